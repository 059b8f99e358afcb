//! The network driver (tokio): the only code that touches sockets and clocks. Each
//! association is one task that owns its socket and its sans-io [`Association`]; users talk
//! to it through bounded channels, so a peer that sends faster than the user consumes is
//! slowed down by TCP, not buffered without limit.

mod access;
mod client;
mod driver;
pub mod forward;
mod server;
pub mod tls;

pub use access::Network;
pub use client::{associate, AssociateError, Client, ClientConfig, LinkError};
pub use server::{
    notify, serve, AssociationInfo, DataSetSink, Notification, NotifyFuture, Origin, Responder,
    Response, ServerConfig, Service, ServiceFuture, DEFAULT_MAX_QUEUED,
};
