//! dimse-core: DICOM message exchange (PS3.7 DIMSE over the PS3.8 Upper Layer), sans-io.
//!
//! The codecs in [`pdu`] and [`message`] never touch a socket or a clock: they take bytes
//! and return values (or values and return bytes), so every byte layout of the standard is
//! testable without a network.
#![forbid(unsafe_code)]

pub mod association;
pub mod filemeta;
pub mod message;
pub mod negotiation;
#[cfg(feature = "net")]
pub mod net;
pub mod pdu;
pub mod storage;
pub mod uid;
pub mod ul;
