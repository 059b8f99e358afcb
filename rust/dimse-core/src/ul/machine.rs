//! [`StateMachine`]: the actions of PS3.8 §9.2.2 carried out over the table of §9.2.3, with
//! the ARTIM timer and the bounded ACSE waits as explicit deadlines.

use std::fmt;
use std::time::{Duration, Instant};

use super::{transition, Action, Event, Role, State};

/// Timer values for one association.
///
/// PS3.8 leaves the value of ARTIM to the implementation; the bounded waits in Sta5 and Sta7
/// are not part of the Upper Layer at all (PS3.8 §9.1.4 Note 2 gives that supervision to the
/// layer above), which is why they are a separate value rather than a reuse of ARTIM.
///
/// A duration so large that `now + duration` does not fit in an [`Instant`] (such as
/// [`Duration::MAX`]) means "no deadline".
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timeouts {
    /// ARTIM (Association Request/Reject/Release Timer): how long to wait for the
    /// A-ASSOCIATE-RQ after accepting a transport connection (Sta2), and for the peer to close
    /// the transport after our last PDU (Sta13).
    pub artim: Duration,
    /// How long to wait for the peer's A-ASSOCIATE-AC/RJ (Sta5) or A-RELEASE-RP (Sta7, and
    /// Sta10/Sta11 in a release collision) before giving up on it: A-ABORT and close, Sta1.
    pub acse: Duration,
}

impl Default for Timeouts {
    /// 30 s each: long enough for a loaded peer, short enough that a dead one is noticed.
    fn default() -> Self {
        Timeouts {
            artim: Duration::from_secs(30),
            acse: Duration::from_secs(30),
        }
    }
}

/// The source of an A-ABORT PDU we send (PS3.8 §9.3.8: 0 = service-user, 2 = service-provider).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub enum AbortSource {
    /// DICOM UL service-user (source 0). Used by AA-1 and by the bounded ACSE waits, which
    /// stand for the layer above giving up. The reason field is not significant (send 0).
    ServiceUser,
    /// DICOM UL service-provider (source 2). Used by AA-8 and AA-7. The driver picks the
    /// reason: "unexpected PDU" when a well-formed PDU arrived in the wrong state,
    /// "unrecognized PDU" or a parameter reason for what made it raise Evt19.
    ServiceProvider,
}

/// Why the service-provider aborted (an A-P-ABORT indication to the local user).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub enum ProviderAbortCause {
    /// AA-4: the transport connection closed (or failed to open, in Sta4) under us.
    TransportClosed,
    /// AA-8: the peer sent a PDU that is unexpected in this state, or an invalid one; we sent
    /// an A-ABORT with service-provider source.
    ProtocolError,
}

/// A service primitive delivered to the local user (PS3.8 §7).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub enum Indication {
    /// AE-6: A-ASSOCIATE indication; the user answers with Evt7 (accept) or Evt8 (reject).
    /// The parameters are those of the A-ASSOCIATE-RQ PDU the driver holds.
    AssociateIndication,
    /// AE-3: A-ASSOCIATE confirmation (accept), from the A-ASSOCIATE-AC PDU.
    AssociateConfirmAccept,
    /// AE-4: A-ASSOCIATE confirmation (reject), from the A-ASSOCIATE-RJ PDU.
    AssociateConfirmReject,
    /// DT-2, AR-6: P-DATA indication, from the P-DATA-TF PDU.
    PData,
    /// AR-2, AR-8: A-RELEASE indication; the user answers with Evt14.
    ///
    /// `collision` is true for AR-8 (both ends asked to release). On the acceptor (Sta10) the
    /// user must then wait for [`Indication::ReleaseConfirm`] before answering: Evt14 is not
    /// valid in Sta10.
    ReleaseIndication {
        /// AR-8 rather than AR-2.
        collision: bool,
    },
    /// AR-3, AR-10: A-RELEASE confirmation.
    ReleaseConfirm,
    /// AA-3: the peer sent an A-ABORT PDU. PS3.8 AA-3 makes this an A-ABORT indication when the
    /// PDU's source is the service-user and an A-P-ABORT indication otherwise; the source is in
    /// the PDU the driver holds, and the state machine does the same either way (close, Sta1).
    PeerAbort,
    /// AA-4, AA-8: A-P-ABORT indication.
    ProviderAbort {
        /// What went wrong.
        cause: ProviderAbortCause,
    },
    /// The peer did not answer our A-ASSOCIATE-RQ within [`Timeouts::acse`] (Sta5); we sent
    /// A-ABORT and closed the transport. Not a PS3.8 primitive: see [`StateMachine::poll_timeout`].
    AssociateTimeout,
    /// The peer did not answer our A-RELEASE-RQ within [`Timeouts::acse`] (Sta7, or Sta10/Sta11
    /// in a release collision); we sent A-ABORT and closed the transport. Not a PS3.8
    /// primitive: see [`StateMachine::poll_timeout`].
    ReleaseTimeout,
}

/// One thing the driver must do. [`StateMachine::handle`] returns them in the order the
/// action definitions of PS3.8 §9.2.2 list them; the driver performs them in that order.
///
/// Some actions have no output: AE-5's "transport connection response" is the `accept()` the
/// driver did before raising Evt5; AR-5, AA-5 follow Evt17, when the transport is already
/// closed (the driver just drops it); AA-6 ignores the PDU.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub enum Output {
    /// AE-1: open the transport connection to the peer; then raise Evt2 on success or Evt17
    /// on failure. (How long to try is the driver's transport timeout.)
    ConnectTransport,
    /// AE-2: send the A-ASSOCIATE-RQ PDU (from the user's A-ASSOCIATE request).
    SendAssociateRq,
    /// AE-7: send the A-ASSOCIATE-AC PDU (from the user's A-ASSOCIATE response).
    SendAssociateAc,
    /// AE-8: send the A-ASSOCIATE-RJ PDU from the user's A-ASSOCIATE response; or AE-6 when
    /// the driver called `handle_associate_rq(false, ..)`: the service-provider's rejection,
    /// with the source and reason the driver found.
    SendAssociateRj,
    /// DT-1, AR-7: send the P-DATA-TF PDU (from the user's P-DATA request).
    SendPData,
    /// AR-1: send the A-RELEASE-RQ PDU.
    SendReleaseRq,
    /// AR-4, AR-9: send the A-RELEASE-RP PDU.
    SendReleaseRp,
    /// AA-1, AA-7, AA-8 and the bounded ACSE waits: send an A-ABORT PDU.
    SendAbort {
        /// The A-ABORT source field.
        source: AbortSource,
    },
    /// AE-4, AR-3, AA-2, AA-3 and the bounded ACSE waits: close the transport connection.
    /// The machine is then in Sta1; the driver must not raise Evt17 for this connection.
    CloseTransport,
    /// Deliver a primitive to the local user.
    Indicate(Indication),
}

/// The outputs of one step: at most three, held inline so that stepping never allocates.
///
/// Dereferences to `[Output]`; iterate it, index it, or compare `as_slice()` with an array.
#[derive(Clone, Copy)]
pub struct Outputs {
    items: [Output; Outputs::CAPACITY],
    len: usize,
}

impl Outputs {
    /// The longest step: A-ABORT, close, indicate (a bounded ACSE wait running out).
    const CAPACITY: usize = 3;
    /// Filler for the unused slots; never visible through the public API.
    const FILLER: Output = Output::CloseTransport;

    const fn none() -> Self {
        Outputs {
            items: [Self::FILLER; Self::CAPACITY],
            len: 0,
        }
    }

    const fn one(a: Output) -> Self {
        Outputs {
            items: [a, Self::FILLER, Self::FILLER],
            len: 1,
        }
    }

    const fn two(a: Output, b: Output) -> Self {
        Outputs {
            items: [a, b, Self::FILLER],
            len: 2,
        }
    }

    const fn three(a: Output, b: Output, c: Output) -> Self {
        Outputs {
            items: [a, b, c],
            len: 3,
        }
    }

    /// The outputs, in the order they must be performed.
    pub fn as_slice(&self) -> &[Output] {
        self.items.get(..self.len).unwrap_or(&[])
    }
}

impl std::ops::Deref for Outputs {
    type Target = [Output];

    fn deref(&self) -> &[Output] {
        self.as_slice()
    }
}

impl PartialEq for Outputs {
    fn eq(&self, other: &Self) -> bool {
        self.as_slice() == other.as_slice()
    }
}

impl Eq for Outputs {}

impl fmt::Debug for Outputs {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.as_slice()).finish()
    }
}

impl IntoIterator for Outputs {
    type Item = Output;
    type IntoIter = std::iter::Take<std::array::IntoIter<Output, { Outputs::CAPACITY }>>;

    fn into_iter(self) -> Self::IntoIter {
        self.items.into_iter().take(self.len)
    }
}

impl<'a> IntoIterator for &'a Outputs {
    type Item = &'a Output;
    type IntoIter = std::slice::Iter<'a, Output>;

    fn into_iter(self) -> Self::IntoIter {
        self.as_slice().iter()
    }
}

/// An event fed in a state where Table 9-10 has a blank cell. The machine is unchanged.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct InvalidEvent {
    /// The state the machine was (and still is) in.
    pub state: State,
    /// The event that was refused.
    pub event: Event,
}

impl fmt::Display for InvalidEvent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} ({}) is not valid in {} ({}) (PS3.8 Table 9-10)",
            self.event,
            self.event.description(),
            self.state,
            self.state.description()
        )
    }
}

impl std::error::Error for InvalidEvent {}

/// The Upper Layer state machine of one association, with its timers.
///
/// Time is passed in: every call that can start a timer takes `now`, and the driver asks
/// [`deadline`](Self::deadline) when it must next call [`poll_timeout`](Self::poll_timeout).
/// Tests drive it with a virtual clock.
///
/// Invariants (checked by the tests): ARTIM runs exactly in Sta2 and Sta13; the ACSE wait
/// runs exactly in the states that await a PDU from the peer's user: Sta5, Sta7, Sta10,
/// Sta11.
#[derive(Debug, Clone)]
pub struct StateMachine {
    state: State,
    role: Role,
    timeouts: Timeouts,
    /// ARTIM expiry, `None` when the timer is stopped.
    artim: Option<Instant>,
    /// End of the bounded wait in Sta5/Sta7/Sta10/Sta11, `None` elsewhere.
    acse: Option<Instant>,
}

impl StateMachine {
    /// A machine in Sta1 (Idle).
    pub fn new(role: Role, timeouts: Timeouts) -> Self {
        StateMachine {
            state: State::Sta1,
            role,
            timeouts,
            artim: None,
            acse: None,
        }
    }

    /// The current state.
    pub fn state(&self) -> State {
        self.state
    }

    /// This end's role.
    pub fn role(&self) -> Role {
        self.role
    }

    /// The timer values.
    pub fn timeouts(&self) -> Timeouts {
        self.timeouts
    }

    /// When ARTIM expires, if it is running.
    pub fn artim_deadline(&self) -> Option<Instant> {
        self.artim
    }

    /// When the bounded wait for A-ASSOCIATE-AC/RJ (Sta5) or A-RELEASE-RP (Sta7, Sta10,
    /// Sta11) ends.
    pub fn acse_deadline(&self) -> Option<Instant> {
        self.acse
    }

    /// The next time the driver must call [`poll_timeout`](Self::poll_timeout), if any.
    pub fn deadline(&self) -> Option<Instant> {
        match (self.artim, self.acse) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// Feed an event at time `now`; returns the outputs, or [`InvalidEvent`] for a blank cell
    /// of Table 9-10 (the machine is then unchanged).
    ///
    /// Evt6 fed here is taken as an acceptable A-ASSOCIATE-RQ; a driver whose checks on the
    /// PDU can fail calls [`handle_associate_rq`](Self::handle_associate_rq) instead.
    pub fn handle(&mut self, event: Event, now: Instant) -> Result<Outputs, InvalidEvent> {
        self.step(event, true, now)
    }

    /// Evt6 (A-ASSOCIATE-RQ PDU received), with the service-provider's verdict on it.
    ///
    /// AE-6 (Sta2) branches on whether the A-ASSOCIATE-RQ is "acceptable by the
    /// service-provider" (PS3.8 Table 9-6): that is a judgement on the PDU (for example the
    /// protocol version, PS3.8 §9.3.4 with RJ source 2 reason 2), which the driver makes, so it
    /// passes the answer here:
    ///
    /// - `acceptable == true`: stop ARTIM, [`Indication::AssociateIndication`], Sta3.
    /// - `acceptable == false`: stop ARTIM, [`Output::SendAssociateRj`] (the driver fills in
    ///   the provider's source and reason), start ARTIM, Sta13. The user is not told.
    ///
    /// This is preferred over indicating and letting the caller send Evt8 at once, because
    /// the standard's reject branch never reaches the user, and the user's Evt8 (AE-8) carries
    /// the user's verdict, not the provider's. In every state other than Sta2, `acceptable`
    /// is ignored and this is exactly `handle(Event::Evt6, now)` (AA-8 or AA-7).
    pub fn handle_associate_rq(
        &mut self,
        acceptable: bool,
        now: Instant,
    ) -> Result<Outputs, InvalidEvent> {
        self.step(Event::Evt6, acceptable, now)
    }

    /// Call when `now >= deadline()` (calling earlier, or with no deadline, does nothing).
    ///
    /// - ARTIM expired (it runs only in Sta2 and Sta13): raises Evt18, which is AA-2 in both:
    ///   close the transport, Sta1. Either no A-ASSOCIATE-RQ came in time (PS3.8 §9.1.4 case
    ///   b), or the peer did not close after our A-ASSOCIATE-RJ, A-RELEASE-RP or A-ABORT
    ///   (§9.1.4 case d names the A-ABORT one).
    /// - The bounded wait in Sta5 (awaiting A-ASSOCIATE-AC/RJ) or Sta7 (awaiting
    ///   A-RELEASE-RP; also Sta10 and Sta11, which await it in a release collision) ran out:
    ///   the same as the local user issuing A-ABORT (AA-1: send A-ABORT,
    ///   service-user source) followed at once by the close that ARTIM would otherwise do in
    ///   Sta13 (AA-2): the peer has already shown it does not answer, so waiting for it to
    ///   close as well would only double the delay. Outputs `SendAbort`, `CloseTransport`,
    ///   then [`Indication::AssociateTimeout`] or [`Indication::ReleaseTimeout`]; Sta1.
    ///
    /// Each wait is measured from entering its state. The Sta7 wait is not extended by P-DATA
    /// that still arrives (AR-6): a peer that keeps sending data but never answers the release
    /// must not hold the association either.
    pub fn poll_timeout(&mut self, now: Instant) -> Outputs {
        if self.artim.is_some_and(|t| now >= t) {
            // ARTIM runs only in Sta2 and Sta13, where Evt18 is AA-2; should that ever not
            // hold, stopping the stray timer is the safe reading of "expiry has no effect".
            match self.step(Event::Evt18, true, now) {
                Ok(out) => return out,
                Err(_) => self.artim = None,
            }
        }
        if self.acse.is_some_and(|t| now >= t) {
            self.acse = None;
            let indication = match self.state {
                State::Sta5 => Indication::AssociateTimeout,
                State::Sta7 | State::Sta10 | State::Sta11 => Indication::ReleaseTimeout,
                _ => return Outputs::none(),
            };
            self.state = State::Sta1;
            self.artim = None;
            return Outputs::three(
                Output::SendAbort {
                    source: AbortSource::ServiceUser,
                },
                Output::CloseTransport,
                Output::Indicate(indication),
            );
        }
        Outputs::none()
    }

    /// One step: look up the cell, perform the action (PS3.8 Tables 9-6 to 9-9), enter the
    /// next state.
    fn step(
        &mut self,
        event: Event,
        rq_acceptable: bool,
        now: Instant,
    ) -> Result<Outputs, InvalidEvent> {
        let Some((action, mut next)) = transition(self.state, event, self.role) else {
            return Err(InvalidEvent {
                state: self.state,
                event,
            });
        };
        let indicate = Output::Indicate;
        let out = match action {
            Action::Ae1 => Outputs::one(Output::ConnectTransport),
            Action::Ae2 => Outputs::one(Output::SendAssociateRq),
            Action::Ae3 => Outputs::one(indicate(Indication::AssociateConfirmAccept)),
            Action::Ae4 => Outputs::two(
                indicate(Indication::AssociateConfirmReject),
                Output::CloseTransport,
            ),
            Action::Ae5 => {
                // PS3.8 §9.1.2: ARTIM is set when an incoming transport connection is
                // accepted, so a peer that connects and says nothing is dropped.
                self.start_artim(now);
                Outputs::none()
            }
            Action::Ae6 => {
                self.stop_artim();
                if rq_acceptable {
                    Outputs::one(indicate(Indication::AssociateIndication))
                } else {
                    // The reject branch: ARTIM bounds the wait for the peer to close.
                    self.start_artim(now);
                    next = State::Sta13;
                    Outputs::one(Output::SendAssociateRj)
                }
            }
            Action::Ae7 => Outputs::one(Output::SendAssociateAc),
            Action::Ae8 => {
                self.start_artim(now);
                Outputs::one(Output::SendAssociateRj)
            }
            Action::Dt1 | Action::Ar7 => Outputs::one(Output::SendPData),
            Action::Dt2 | Action::Ar6 => Outputs::one(indicate(Indication::PData)),
            Action::Ar1 => Outputs::one(Output::SendReleaseRq),
            Action::Ar2 => {
                Outputs::one(indicate(Indication::ReleaseIndication { collision: false }))
            }
            Action::Ar3 => {
                Outputs::two(indicate(Indication::ReleaseConfirm), Output::CloseTransport)
            }
            Action::Ar4 => {
                self.start_artim(now);
                Outputs::one(Output::SendReleaseRp)
            }
            Action::Ar5 | Action::Aa5 => {
                self.stop_artim();
                Outputs::none()
            }
            Action::Ar8 => {
                Outputs::one(indicate(Indication::ReleaseIndication { collision: true }))
            }
            Action::Ar9 => Outputs::one(Output::SendReleaseRp),
            Action::Ar10 => Outputs::one(indicate(Indication::ReleaseConfirm)),
            Action::Aa1 => {
                // "start (or restart if already started)": from Sta2 ARTIM is running and is
                // restarted, so the peer gets a full ARTIM to close.
                self.start_artim(now);
                Outputs::one(Output::SendAbort {
                    source: AbortSource::ServiceUser,
                })
            }
            Action::Aa2 => {
                self.stop_artim();
                Outputs::one(Output::CloseTransport)
            }
            Action::Aa3 => Outputs::two(indicate(Indication::PeerAbort), Output::CloseTransport),
            Action::Aa4 => Outputs::one(indicate(Indication::ProviderAbort {
                cause: ProviderAbortCause::TransportClosed,
            })),
            // AA-6 ignores the PDU and leaves ARTIM running: a peer that keeps talking after
            // our last PDU must not postpone the close.
            Action::Aa6 => Outputs::none(),
            // AA-7 names no source. It answers a PDU arriving in Sta13, after the association
            // has ended, so no user is involved: the provider is the source. ARTIM keeps
            // running (it always runs in Sta13).
            Action::Aa7 => Outputs::one(Output::SendAbort {
                source: AbortSource::ServiceProvider,
            }),
            Action::Aa8 => {
                self.start_artim(now);
                Outputs::two(
                    Output::SendAbort {
                        source: AbortSource::ServiceProvider,
                    },
                    indicate(Indication::ProviderAbort {
                        cause: ProviderAbortCause::ProtocolError,
                    }),
                )
            }
        };
        self.enter(next, now);
        Ok(out)
    }

    /// Move to `next`, starting the bounded ACSE wait on entering a state that awaits the
    /// peer's AC/RJ or RP and ending it on leaving (staying in Sta7 through AR-6 keeps the
    /// original deadline).
    fn enter(&mut self, next: State, now: Instant) {
        if next != self.state {
            self.acse = match next {
                State::Sta5 | State::Sta7 | State::Sta10 | State::Sta11 => {
                    now.checked_add(self.timeouts.acse)
                }
                _ => None,
            };
        }
        self.state = next;
    }

    fn start_artim(&mut self, now: Instant) {
        self.artim = now.checked_add(self.timeouts.artim);
    }

    fn stop_artim(&mut self) {
        self.artim = None;
    }
}
