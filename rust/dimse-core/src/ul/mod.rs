//! The DICOM Upper Layer protocol state machine (PS3.8 §9.2), sans-io.
//!
//! This module is pure over events: it owns no socket, reads no clock and knows no PDU
//! layout. A driver (blocking, async, or a test) turns what happens on the wire and what the
//! local user asks for into [`Event`]s, feeds them to a [`StateMachine`] together with the
//! current time, and carries out the returned [`Output`]s in order.
//!
//! Two layers:
//!
//! - [`transition`] is PS3.8 Table 9-10 ("DICOM Upper Layer Protocol State Transition
//!   Table") and nothing else: one `match` arm per (state, event) cell, so the table can be
//!   read against the standard line by line and the compiler rejects a missing cell.
//! - [`StateMachine`] performs the actions of PS3.8 §9.2.2 (Tables 9-6 to 9-9): it says what
//!   to send, what to indicate to the local user and when to close, and it runs the ARTIM
//!   timer (PS3.8 §9.1.2, §9.1.4, §9.2.2) as an explicit deadline.
//!
//! Where dimse goes beyond the letter of the standard (each is documented where it is done):
//!
//! - **AE-6** has two outcomes; [`StateMachine::handle_associate_rq`] takes the provider's
//!   verdict on the A-ASSOCIATE-RQ so that both branches are exactly the standard's.
//! - **Evt15 in Sta13** (the user asks for A-ABORT while we wait for the peer to close) is blank
//!   in Table 9-10; dimse performs AA-2 (close now) instead of refusing the request.
//! - **Sta5 and Sta7** (waiting for the peer's A-ASSOCIATE-AC/RJ or A-RELEASE-RP; likewise
//!   Sta10 and Sta11, which wait for an A-RELEASE-RP in a release collision) are bounded by
//!   [`Timeouts::acse`]: PS3.8 §9.1.4 Note 2 leaves that supervision to the layer above, and a
//!   peer that never answers must not hold an association forever.

mod machine;
#[cfg(test)]
mod tests;

pub use machine::{
    AbortSource, Indication, InvalidEvent, Output, Outputs, ProviderAbortCause, StateMachine,
    Timeouts,
};

use std::fmt;

/// The 13 states of the Upper Layer state machine (PS3.8 §9.2.1, Tables 9-1 to 9-5).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub enum State {
    /// Sta1: Idle (no association, no transport connection).
    Sta1,
    /// Sta2: Transport connection open (awaiting A-ASSOCIATE-RQ PDU).
    Sta2,
    /// Sta3: Awaiting local A-ASSOCIATE response primitive (from local user).
    Sta3,
    /// Sta4: Awaiting transport connection opening to complete (from local transport service).
    Sta4,
    /// Sta5: Awaiting A-ASSOCIATE-AC or A-ASSOCIATE-RJ PDU.
    Sta5,
    /// Sta6: Association established and ready for data transfer.
    Sta6,
    /// Sta7: Awaiting A-RELEASE-RP PDU.
    Sta7,
    /// Sta8: Awaiting local A-RELEASE response primitive (from local user).
    Sta8,
    /// Sta9: Release collision requestor side; awaiting A-RELEASE response (from local user).
    Sta9,
    /// Sta10: Release collision acceptor side; awaiting A-RELEASE-RP PDU.
    Sta10,
    /// Sta11: Release collision requestor side; awaiting A-RELEASE-RP PDU.
    Sta11,
    /// Sta12: Release collision acceptor side; awaiting A-RELEASE response primitive (from
    /// local user).
    Sta12,
    /// Sta13: Awaiting Transport Connection Close Indication (association no longer exists).
    Sta13,
}

impl State {
    /// All states, in the standard's order.
    pub const ALL: [State; 13] = [
        State::Sta1,
        State::Sta2,
        State::Sta3,
        State::Sta4,
        State::Sta5,
        State::Sta6,
        State::Sta7,
        State::Sta8,
        State::Sta9,
        State::Sta10,
        State::Sta11,
        State::Sta12,
        State::Sta13,
    ];

    /// The state's number in PS3.8 (1 for Sta1 ... 13 for Sta13).
    pub const fn number(self) -> u8 {
        match self {
            State::Sta1 => 1,
            State::Sta2 => 2,
            State::Sta3 => 3,
            State::Sta4 => 4,
            State::Sta5 => 5,
            State::Sta6 => 6,
            State::Sta7 => 7,
            State::Sta8 => 8,
            State::Sta9 => 9,
            State::Sta10 => 10,
            State::Sta11 => 11,
            State::Sta12 => 12,
            State::Sta13 => 13,
        }
    }

    /// The state's definition, as PS3.8 Tables 9-1 to 9-5 word it.
    pub const fn description(self) -> &'static str {
        match self {
            State::Sta1 => "Idle",
            State::Sta2 => "Transport connection open (awaiting A-ASSOCIATE-RQ PDU)",
            State::Sta3 => "Awaiting local A-ASSOCIATE response primitive",
            State::Sta4 => "Awaiting transport connection opening to complete",
            State::Sta5 => "Awaiting A-ASSOCIATE-AC or A-ASSOCIATE-RJ PDU",
            State::Sta6 => "Association established and ready for data transfer",
            State::Sta7 => "Awaiting A-RELEASE-RP PDU",
            State::Sta8 => "Awaiting local A-RELEASE response primitive",
            State::Sta9 => "Release collision requestor side; awaiting A-RELEASE response",
            State::Sta10 => "Release collision acceptor side; awaiting A-RELEASE-RP PDU",
            State::Sta11 => "Release collision requestor side; awaiting A-RELEASE-RP PDU",
            State::Sta12 => "Release collision acceptor side; awaiting A-RELEASE response",
            State::Sta13 => "Awaiting transport connection close indication",
        }
    }
}

impl fmt::Display for State {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Sta{}", self.number())
    }
}

/// The 19 events of the state machine (PS3.8 §9.2.3, event list of Table 9-10).
///
/// Events carry no payload: the PDU or primitive that caused the event stays with the
/// driver, which attaches it to the matching [`Output`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub enum Event {
    /// Evt1: A-ASSOCIATE request (local user).
    Evt1,
    /// Evt2: Transport connect confirmation (local transport service).
    Evt2,
    /// Evt3: A-ASSOCIATE-AC PDU (received on transport connection).
    Evt3,
    /// Evt4: A-ASSOCIATE-RJ PDU (received on transport connection).
    Evt4,
    /// Evt5: Transport connection indication (local transport service).
    Evt5,
    /// Evt6: A-ASSOCIATE-RQ PDU (received on transport connection).
    Evt6,
    /// Evt7: A-ASSOCIATE response primitive (accept).
    Evt7,
    /// Evt8: A-ASSOCIATE response primitive (reject).
    Evt8,
    /// Evt9: P-DATA request primitive.
    Evt9,
    /// Evt10: P-DATA-TF PDU.
    Evt10,
    /// Evt11: A-RELEASE request primitive.
    Evt11,
    /// Evt12: A-RELEASE-RQ PDU (received on open transport connection).
    Evt12,
    /// Evt13: A-RELEASE-RP PDU (received on transport connection).
    Evt13,
    /// Evt14: A-RELEASE response primitive.
    Evt14,
    /// Evt15: A-ABORT request primitive.
    Evt15,
    /// Evt16: A-ABORT PDU (received on open transport connection).
    Evt16,
    /// Evt17: Transport connection closed indication (local transport service).
    Evt17,
    /// Evt18: ARTIM timer expired (Association reject/release timer).
    Evt18,
    /// Evt19: Unrecognized or invalid PDU received.
    Evt19,
}

impl Event {
    /// All events, in the standard's order.
    pub const ALL: [Event; 19] = [
        Event::Evt1,
        Event::Evt2,
        Event::Evt3,
        Event::Evt4,
        Event::Evt5,
        Event::Evt6,
        Event::Evt7,
        Event::Evt8,
        Event::Evt9,
        Event::Evt10,
        Event::Evt11,
        Event::Evt12,
        Event::Evt13,
        Event::Evt14,
        Event::Evt15,
        Event::Evt16,
        Event::Evt17,
        Event::Evt18,
        Event::Evt19,
    ];

    /// The event's number in PS3.8 (1 for Evt1 ... 19 for Evt19).
    pub const fn number(self) -> u8 {
        match self {
            Event::Evt1 => 1,
            Event::Evt2 => 2,
            Event::Evt3 => 3,
            Event::Evt4 => 4,
            Event::Evt5 => 5,
            Event::Evt6 => 6,
            Event::Evt7 => 7,
            Event::Evt8 => 8,
            Event::Evt9 => 9,
            Event::Evt10 => 10,
            Event::Evt11 => 11,
            Event::Evt12 => 12,
            Event::Evt13 => 13,
            Event::Evt14 => 14,
            Event::Evt15 => 15,
            Event::Evt16 => 16,
            Event::Evt17 => 17,
            Event::Evt18 => 18,
            Event::Evt19 => 19,
        }
    }

    /// The event's name, as PS3.8 Table 9-10 words it.
    pub const fn description(self) -> &'static str {
        match self {
            Event::Evt1 => "A-ASSOCIATE request (local user)",
            Event::Evt2 => "Transport connect confirmation (local transport service)",
            Event::Evt3 => "A-ASSOCIATE-AC PDU (received on transport connection)",
            Event::Evt4 => "A-ASSOCIATE-RJ PDU (received on transport connection)",
            Event::Evt5 => "Transport connection indication (local transport service)",
            Event::Evt6 => "A-ASSOCIATE-RQ PDU (received on transport connection)",
            Event::Evt7 => "A-ASSOCIATE response primitive (accept)",
            Event::Evt8 => "A-ASSOCIATE response primitive (reject)",
            Event::Evt9 => "P-DATA request primitive",
            Event::Evt10 => "P-DATA-TF PDU",
            Event::Evt11 => "A-RELEASE request primitive",
            Event::Evt12 => "A-RELEASE-RQ PDU (received on open transport connection)",
            Event::Evt13 => "A-RELEASE-RP PDU (received on transport connection)",
            Event::Evt14 => "A-RELEASE response primitive",
            Event::Evt15 => "A-ABORT request primitive",
            Event::Evt16 => "A-ABORT PDU (received on open transport connection)",
            Event::Evt17 => "Transport connection closed indication (local transport service)",
            Event::Evt18 => "ARTIM timer expired (Association reject/release timer)",
            Event::Evt19 => "Unrecognized or invalid PDU received",
        }
    }
}

impl fmt::Display for Event {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Evt{}", self.number())
    }
}

/// The actions of the state machine (PS3.8 §9.2.2, Tables 9-6 to 9-9).
///
/// The next state an action leads to is in its definition; [`transition`] returns it
/// alongside the action. What the action *does* is carried out by [`StateMachine`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub enum Action {
    /// AE-1: Issue TRANSPORT CONNECT request primitive to local transport service. Next: Sta4.
    Ae1,
    /// AE-2: Send A-ASSOCIATE-RQ PDU. Next: Sta5.
    Ae2,
    /// AE-3: Issue A-ASSOCIATE confirmation (accept) primitive. Next: Sta6.
    Ae3,
    /// AE-4: Issue A-ASSOCIATE confirmation (reject) primitive and close transport
    /// connection. Next: Sta1.
    Ae4,
    /// AE-5: Issue transport connection response primitive; start ARTIM timer. Next: Sta2.
    Ae5,
    /// AE-6: Stop ARTIM timer and, if the A-ASSOCIATE-RQ is acceptable by the
    /// service-provider, issue A-ASSOCIATE indication primitive (next: Sta3); otherwise issue
    /// A-ASSOCIATE-RJ PDU and start ARTIM timer (next: Sta13).
    Ae6,
    /// AE-7: Send A-ASSOCIATE-AC PDU. Next: Sta6.
    Ae7,
    /// AE-8: Send A-ASSOCIATE-RJ PDU and start ARTIM timer. Next: Sta13.
    Ae8,
    /// DT-1: Send P-DATA-TF PDU. Next: Sta6.
    Dt1,
    /// DT-2: Send P-DATA indication primitive. Next: Sta6.
    Dt2,
    /// AR-1: Send A-RELEASE-RQ PDU. Next: Sta7.
    Ar1,
    /// AR-2: Issue A-RELEASE indication primitive. Next: Sta8.
    Ar2,
    /// AR-3: Issue A-RELEASE confirmation primitive, and close transport connection.
    /// Next: Sta1.
    Ar3,
    /// AR-4: Issue A-RELEASE-RP PDU and start ARTIM timer. Next: Sta13.
    Ar4,
    /// AR-5: Stop ARTIM timer. Next: Sta1.
    Ar5,
    /// AR-6: Issue P-DATA indication. Next: Sta7.
    Ar6,
    /// AR-7: Issue P-DATA-TF PDU. Next: Sta8.
    Ar7,
    /// AR-8: Issue A-RELEASE indication (release collision). Next: Sta9 if
    /// association-requestor, Sta10 if not.
    Ar8,
    /// AR-9: Send A-RELEASE-RP PDU. Next: Sta11.
    Ar9,
    /// AR-10: Issue A-RELEASE confirmation primitive. Next: Sta12.
    Ar10,
    /// AA-1: Send A-ABORT PDU (service-user source) and start (or restart if already
    /// started) ARTIM timer. Next: Sta13.
    Aa1,
    /// AA-2: Stop ARTIM timer if running. Close transport connection. Next: Sta1.
    Aa2,
    /// AA-3: If service-user initiated abort, issue A-ABORT indication and close transport
    /// connection; otherwise (service-provider initiated abort) issue A-P-ABORT indication and
    /// close transport connection. Next: Sta1.
    Aa3,
    /// AA-4: Issue A-P-ABORT indication primitive. Next: Sta1.
    Aa4,
    /// AA-5: Stop ARTIM timer. Next: Sta1.
    Aa5,
    /// AA-6: Ignore PDU. Next: Sta13.
    Aa6,
    /// AA-7: Send A-ABORT PDU. Next: Sta13.
    Aa7,
    /// AA-8: Send A-ABORT PDU (service-provider source), issue an A-P-ABORT indication, and
    /// start ARTIM timer. Next: Sta13.
    Aa8,
}

impl Action {
    /// All actions, in the standard's order.
    pub const ALL: [Action; 28] = [
        Action::Ae1,
        Action::Ae2,
        Action::Ae3,
        Action::Ae4,
        Action::Ae5,
        Action::Ae6,
        Action::Ae7,
        Action::Ae8,
        Action::Dt1,
        Action::Dt2,
        Action::Ar1,
        Action::Ar2,
        Action::Ar3,
        Action::Ar4,
        Action::Ar5,
        Action::Ar6,
        Action::Ar7,
        Action::Ar8,
        Action::Ar9,
        Action::Ar10,
        Action::Aa1,
        Action::Aa2,
        Action::Aa3,
        Action::Aa4,
        Action::Aa5,
        Action::Aa6,
        Action::Aa7,
        Action::Aa8,
    ];

    /// The action's name as PS3.8 writes it ("AE-1", "DT-2", "AR-10", "AA-8", ...).
    pub const fn name(self) -> &'static str {
        match self {
            Action::Ae1 => "AE-1",
            Action::Ae2 => "AE-2",
            Action::Ae3 => "AE-3",
            Action::Ae4 => "AE-4",
            Action::Ae5 => "AE-5",
            Action::Ae6 => "AE-6",
            Action::Ae7 => "AE-7",
            Action::Ae8 => "AE-8",
            Action::Dt1 => "DT-1",
            Action::Dt2 => "DT-2",
            Action::Ar1 => "AR-1",
            Action::Ar2 => "AR-2",
            Action::Ar3 => "AR-3",
            Action::Ar4 => "AR-4",
            Action::Ar5 => "AR-5",
            Action::Ar6 => "AR-6",
            Action::Ar7 => "AR-7",
            Action::Ar8 => "AR-8",
            Action::Ar9 => "AR-9",
            Action::Ar10 => "AR-10",
            Action::Aa1 => "AA-1",
            Action::Aa2 => "AA-2",
            Action::Aa3 => "AA-3",
            Action::Aa4 => "AA-4",
            Action::Aa5 => "AA-5",
            Action::Aa6 => "AA-6",
            Action::Aa7 => "AA-7",
            Action::Aa8 => "AA-8",
        }
    }
}

impl fmt::Display for Action {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Which end of the association this machine is.
///
/// The role decides one cell of the table: AR-8 (release collision) leads to Sta9 on the
/// association-requestor and to Sta10 on the acceptor (PS3.8 Table 9-8). That asymmetry is
/// what resolves a collision: the requestor's user answers first (Sta9, AR-9), the acceptor
/// waits for that A-RELEASE-RP (Sta10, AR-10) before its user answers (Sta12).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub enum Role {
    /// The association-requestor (the end that sent the A-ASSOCIATE-RQ; SCU usually).
    Requestor,
    /// The association-acceptor (the end that received the A-ASSOCIATE-RQ).
    Acceptor,
}

/// One cell of PS3.8 Table 9-10: `Some((action, next_state))`, or `None` where the event is
/// not valid in the state (a blank cell).
///
/// For AE-6 (Sta2 + Evt6) the next state returned is Sta3, the outcome when the
/// A-ASSOCIATE-RQ is acceptable to the service-provider; the other outcome (send
/// A-ASSOCIATE-RJ, Sta13) is taken by [`StateMachine::handle_associate_rq`], because it
/// depends on the PDU, which this function does not see.
///
/// One cell differs from the standard, on purpose: **Sta13 + Evt15** (A-ABORT request while
/// awaiting transport close) is blank in Table 9-10; here it is AA-2 (stop ARTIM, close the
/// transport, Sta1). In Sta13 the association no longer exists and our last PDU (RJ, RP or
/// A-ABORT) has been sent; a user who asks to abort wants the connection gone now, not after
/// ARTIM. AA-2 is what the standard itself does when ARTIM expires in Sta13, so this only
/// brings that close forward; sending another A-ABORT (AA-1) would put a PDU on a connection
/// whose association is already over. Refusing the request instead would leave the user no
/// way to hurry the close.
///
/// The `match` below has one arm per cell, 13 states x 19 events, and no catch-all, so the
/// compiler proves every cell is decided; the arms are grouped by state (the table's
/// columns), events in order.
pub const fn transition(state: State, event: Event, role: Role) -> Option<(Action, State)> {
    use Action::*;
    use Event::*;
    use State::*;

    // AR-8: "if association-requestor, next state is Sta9; if not, next state is Sta10".
    let collision_state = match role {
        Role::Requestor => Sta9,
        Role::Acceptor => Sta10,
    };

    match (state, event) {
        // Sta1: Idle.
        (Sta1, Evt1) => Some((Ae1, Sta4)),
        (Sta1, Evt2) => None,
        (Sta1, Evt3) => None,
        (Sta1, Evt4) => None,
        (Sta1, Evt5) => Some((Ae5, Sta2)),
        (Sta1, Evt6) => None,
        (Sta1, Evt7) => None,
        (Sta1, Evt8) => None,
        (Sta1, Evt9) => None,
        (Sta1, Evt10) => None,
        (Sta1, Evt11) => None,
        (Sta1, Evt12) => None,
        (Sta1, Evt13) => None,
        (Sta1, Evt14) => None,
        (Sta1, Evt15) => None,
        (Sta1, Evt16) => None,
        (Sta1, Evt17) => None,
        (Sta1, Evt18) => None,
        (Sta1, Evt19) => None,
        // Sta2: transport open, awaiting A-ASSOCIATE-RQ PDU (acceptor, ARTIM running).
        (Sta2, Evt1) => None,
        (Sta2, Evt2) => None,
        (Sta2, Evt3) => Some((Aa1, Sta13)),
        (Sta2, Evt4) => Some((Aa1, Sta13)),
        (Sta2, Evt5) => None,
        (Sta2, Evt6) => Some((Ae6, Sta3)),
        (Sta2, Evt7) => None,
        (Sta2, Evt8) => None,
        (Sta2, Evt9) => None,
        (Sta2, Evt10) => Some((Aa1, Sta13)),
        (Sta2, Evt11) => None,
        (Sta2, Evt12) => Some((Aa1, Sta13)),
        (Sta2, Evt13) => Some((Aa1, Sta13)),
        (Sta2, Evt14) => None,
        (Sta2, Evt15) => None,
        (Sta2, Evt16) => Some((Aa2, Sta1)),
        (Sta2, Evt17) => Some((Aa5, Sta1)),
        (Sta2, Evt18) => Some((Aa2, Sta1)),
        (Sta2, Evt19) => Some((Aa1, Sta13)),
        // Sta3: awaiting local A-ASSOCIATE response.
        (Sta3, Evt1) => None,
        (Sta3, Evt2) => None,
        (Sta3, Evt3) => Some((Aa8, Sta13)),
        (Sta3, Evt4) => Some((Aa8, Sta13)),
        (Sta3, Evt5) => None,
        (Sta3, Evt6) => Some((Aa8, Sta13)),
        (Sta3, Evt7) => Some((Ae7, Sta6)),
        (Sta3, Evt8) => Some((Ae8, Sta13)),
        (Sta3, Evt9) => None,
        (Sta3, Evt10) => Some((Aa8, Sta13)),
        (Sta3, Evt11) => None,
        (Sta3, Evt12) => Some((Aa8, Sta13)),
        (Sta3, Evt13) => Some((Aa8, Sta13)),
        (Sta3, Evt14) => None,
        (Sta3, Evt15) => Some((Aa1, Sta13)),
        (Sta3, Evt16) => Some((Aa3, Sta1)),
        (Sta3, Evt17) => Some((Aa4, Sta1)),
        (Sta3, Evt18) => None,
        (Sta3, Evt19) => Some((Aa8, Sta13)),
        // Sta4: awaiting transport connection to open.
        (Sta4, Evt1) => None,
        (Sta4, Evt2) => Some((Ae2, Sta5)),
        (Sta4, Evt3) => None,
        (Sta4, Evt4) => None,
        (Sta4, Evt5) => None,
        (Sta4, Evt6) => None,
        (Sta4, Evt7) => None,
        (Sta4, Evt8) => None,
        (Sta4, Evt9) => None,
        (Sta4, Evt10) => None,
        (Sta4, Evt11) => None,
        (Sta4, Evt12) => None,
        (Sta4, Evt13) => None,
        (Sta4, Evt14) => None,
        (Sta4, Evt15) => Some((Aa2, Sta1)),
        (Sta4, Evt16) => None,
        (Sta4, Evt17) => Some((Aa4, Sta1)),
        (Sta4, Evt18) => None,
        (Sta4, Evt19) => None,
        // Sta5: awaiting A-ASSOCIATE-AC or -RJ PDU.
        (Sta5, Evt1) => None,
        (Sta5, Evt2) => None,
        (Sta5, Evt3) => Some((Ae3, Sta6)),
        (Sta5, Evt4) => Some((Ae4, Sta1)),
        (Sta5, Evt5) => None,
        (Sta5, Evt6) => Some((Aa8, Sta13)),
        (Sta5, Evt7) => None,
        (Sta5, Evt8) => None,
        (Sta5, Evt9) => None,
        (Sta5, Evt10) => Some((Aa8, Sta13)),
        (Sta5, Evt11) => None,
        (Sta5, Evt12) => Some((Aa8, Sta13)),
        (Sta5, Evt13) => Some((Aa8, Sta13)),
        (Sta5, Evt14) => None,
        (Sta5, Evt15) => Some((Aa1, Sta13)),
        (Sta5, Evt16) => Some((Aa3, Sta1)),
        (Sta5, Evt17) => Some((Aa4, Sta1)),
        (Sta5, Evt18) => None,
        (Sta5, Evt19) => Some((Aa8, Sta13)),
        // Sta6: association established, data transfer.
        (Sta6, Evt1) => None,
        (Sta6, Evt2) => None,
        (Sta6, Evt3) => Some((Aa8, Sta13)),
        (Sta6, Evt4) => Some((Aa8, Sta13)),
        (Sta6, Evt5) => None,
        (Sta6, Evt6) => Some((Aa8, Sta13)),
        (Sta6, Evt7) => None,
        (Sta6, Evt8) => None,
        (Sta6, Evt9) => Some((Dt1, Sta6)),
        (Sta6, Evt10) => Some((Dt2, Sta6)),
        (Sta6, Evt11) => Some((Ar1, Sta7)),
        (Sta6, Evt12) => Some((Ar2, Sta8)),
        (Sta6, Evt13) => Some((Aa8, Sta13)),
        (Sta6, Evt14) => None,
        (Sta6, Evt15) => Some((Aa1, Sta13)),
        (Sta6, Evt16) => Some((Aa3, Sta1)),
        (Sta6, Evt17) => Some((Aa4, Sta1)),
        (Sta6, Evt18) => None,
        (Sta6, Evt19) => Some((Aa8, Sta13)),
        // Sta7: awaiting A-RELEASE-RP PDU.
        (Sta7, Evt1) => None,
        (Sta7, Evt2) => None,
        (Sta7, Evt3) => Some((Aa8, Sta13)),
        (Sta7, Evt4) => Some((Aa8, Sta13)),
        (Sta7, Evt5) => None,
        (Sta7, Evt6) => Some((Aa8, Sta13)),
        (Sta7, Evt7) => None,
        (Sta7, Evt8) => None,
        (Sta7, Evt9) => None,
        (Sta7, Evt10) => Some((Ar6, Sta7)),
        (Sta7, Evt11) => None,
        (Sta7, Evt12) => Some((Ar8, collision_state)),
        (Sta7, Evt13) => Some((Ar3, Sta1)),
        (Sta7, Evt14) => None,
        (Sta7, Evt15) => Some((Aa1, Sta13)),
        (Sta7, Evt16) => Some((Aa3, Sta1)),
        (Sta7, Evt17) => Some((Aa4, Sta1)),
        (Sta7, Evt18) => None,
        (Sta7, Evt19) => Some((Aa8, Sta13)),
        // Sta8: awaiting local A-RELEASE response.
        (Sta8, Evt1) => None,
        (Sta8, Evt2) => None,
        (Sta8, Evt3) => Some((Aa8, Sta13)),
        (Sta8, Evt4) => Some((Aa8, Sta13)),
        (Sta8, Evt5) => None,
        (Sta8, Evt6) => Some((Aa8, Sta13)),
        (Sta8, Evt7) => None,
        (Sta8, Evt8) => None,
        (Sta8, Evt9) => Some((Ar7, Sta8)),
        (Sta8, Evt10) => Some((Aa8, Sta13)),
        (Sta8, Evt11) => None,
        (Sta8, Evt12) => Some((Aa8, Sta13)),
        (Sta8, Evt13) => Some((Aa8, Sta13)),
        (Sta8, Evt14) => Some((Ar4, Sta13)),
        (Sta8, Evt15) => Some((Aa1, Sta13)),
        (Sta8, Evt16) => Some((Aa3, Sta1)),
        (Sta8, Evt17) => Some((Aa4, Sta1)),
        (Sta8, Evt18) => None,
        (Sta8, Evt19) => Some((Aa8, Sta13)),
        // Sta9: release collision, requestor side, awaiting local A-RELEASE response.
        (Sta9, Evt1) => None,
        (Sta9, Evt2) => None,
        (Sta9, Evt3) => Some((Aa8, Sta13)),
        (Sta9, Evt4) => Some((Aa8, Sta13)),
        (Sta9, Evt5) => None,
        (Sta9, Evt6) => Some((Aa8, Sta13)),
        (Sta9, Evt7) => None,
        (Sta9, Evt8) => None,
        (Sta9, Evt9) => None,
        (Sta9, Evt10) => Some((Aa8, Sta13)),
        (Sta9, Evt11) => None,
        (Sta9, Evt12) => Some((Aa8, Sta13)),
        (Sta9, Evt13) => Some((Aa8, Sta13)),
        (Sta9, Evt14) => Some((Ar9, Sta11)),
        (Sta9, Evt15) => Some((Aa1, Sta13)),
        (Sta9, Evt16) => Some((Aa3, Sta1)),
        (Sta9, Evt17) => Some((Aa4, Sta1)),
        (Sta9, Evt18) => None,
        (Sta9, Evt19) => Some((Aa8, Sta13)),
        // Sta10: release collision, acceptor side, awaiting A-RELEASE-RP PDU.
        (Sta10, Evt1) => None,
        (Sta10, Evt2) => None,
        (Sta10, Evt3) => Some((Aa8, Sta13)),
        (Sta10, Evt4) => Some((Aa8, Sta13)),
        (Sta10, Evt5) => None,
        (Sta10, Evt6) => Some((Aa8, Sta13)),
        (Sta10, Evt7) => None,
        (Sta10, Evt8) => None,
        (Sta10, Evt9) => None,
        (Sta10, Evt10) => Some((Aa8, Sta13)),
        (Sta10, Evt11) => None,
        (Sta10, Evt12) => Some((Aa8, Sta13)),
        (Sta10, Evt13) => Some((Ar10, Sta12)),
        (Sta10, Evt14) => None,
        (Sta10, Evt15) => Some((Aa1, Sta13)),
        (Sta10, Evt16) => Some((Aa3, Sta1)),
        (Sta10, Evt17) => Some((Aa4, Sta1)),
        (Sta10, Evt18) => None,
        (Sta10, Evt19) => Some((Aa8, Sta13)),
        // Sta11: release collision, requestor side, awaiting A-RELEASE-RP PDU.
        (Sta11, Evt1) => None,
        (Sta11, Evt2) => None,
        (Sta11, Evt3) => Some((Aa8, Sta13)),
        (Sta11, Evt4) => Some((Aa8, Sta13)),
        (Sta11, Evt5) => None,
        (Sta11, Evt6) => Some((Aa8, Sta13)),
        (Sta11, Evt7) => None,
        (Sta11, Evt8) => None,
        (Sta11, Evt9) => None,
        (Sta11, Evt10) => Some((Aa8, Sta13)),
        (Sta11, Evt11) => None,
        (Sta11, Evt12) => Some((Aa8, Sta13)),
        (Sta11, Evt13) => Some((Ar3, Sta1)),
        (Sta11, Evt14) => None,
        (Sta11, Evt15) => Some((Aa1, Sta13)),
        (Sta11, Evt16) => Some((Aa3, Sta1)),
        (Sta11, Evt17) => Some((Aa4, Sta1)),
        (Sta11, Evt18) => None,
        (Sta11, Evt19) => Some((Aa8, Sta13)),
        // Sta12: release collision, acceptor side, awaiting local A-RELEASE response.
        (Sta12, Evt1) => None,
        (Sta12, Evt2) => None,
        (Sta12, Evt3) => Some((Aa8, Sta13)),
        (Sta12, Evt4) => Some((Aa8, Sta13)),
        (Sta12, Evt5) => None,
        (Sta12, Evt6) => Some((Aa8, Sta13)),
        (Sta12, Evt7) => None,
        (Sta12, Evt8) => None,
        (Sta12, Evt9) => None,
        (Sta12, Evt10) => Some((Aa8, Sta13)),
        (Sta12, Evt11) => None,
        (Sta12, Evt12) => Some((Aa8, Sta13)),
        (Sta12, Evt13) => Some((Aa8, Sta13)),
        (Sta12, Evt14) => Some((Ar4, Sta13)),
        (Sta12, Evt15) => Some((Aa1, Sta13)),
        (Sta12, Evt16) => Some((Aa3, Sta1)),
        (Sta12, Evt17) => Some((Aa4, Sta1)),
        (Sta12, Evt18) => None,
        (Sta12, Evt19) => Some((Aa8, Sta13)),
        // Sta13: awaiting transport close (ARTIM running).
        (Sta13, Evt1) => None,
        (Sta13, Evt2) => None,
        (Sta13, Evt3) => Some((Aa6, Sta13)),
        (Sta13, Evt4) => Some((Aa6, Sta13)),
        (Sta13, Evt5) => None,
        (Sta13, Evt6) => Some((Aa7, Sta13)),
        (Sta13, Evt7) => None,
        (Sta13, Evt8) => None,
        (Sta13, Evt9) => None,
        (Sta13, Evt10) => Some((Aa6, Sta13)),
        (Sta13, Evt11) => None,
        (Sta13, Evt12) => Some((Aa6, Sta13)),
        (Sta13, Evt13) => Some((Aa6, Sta13)),
        (Sta13, Evt14) => None,
        // Blank in Table 9-10; dimse extension, see the note on `transition`.
        (Sta13, Evt15) => Some((Aa2, Sta1)),
        (Sta13, Evt16) => Some((Aa2, Sta1)),
        (Sta13, Evt17) => Some((Ar5, Sta1)),
        (Sta13, Evt18) => Some((Aa2, Sta1)),
        (Sta13, Evt19) => Some((Aa7, Sta13)),
    }
}
