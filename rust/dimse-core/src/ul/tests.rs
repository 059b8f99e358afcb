//! Tests of the Upper Layer state machine.
//!
//! The expected values here are written out independently of the implementation: the
//! transition table as a grid laid out like PS3.8 Table 9-10, and the action definitions of
//! PS3.8 Tables 9-6 to 9-9 (next state, outputs, ARTIM effect) as tables keyed by the
//! standard's action names. Nothing below derives an expectation from `transition` itself.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use super::*;

// ---------------------------------------------------------------------------------------
// Expected values, written from PS3.8 §9.2
// ---------------------------------------------------------------------------------------

/// PS3.8 Table 9-10: one row per event, one column per state (Sta1 .. Sta13); "." is a
/// blank cell. The one cell marked `*` is blank in the standard and filled by dimse
/// (Sta13 + Evt15 -> AA-2, see `transition`).
const TABLE_9_10: &str = "
        Sta1 Sta2 Sta3 Sta4 Sta5 Sta6 Sta7 Sta8 Sta9 Sta10 Sta11 Sta12 Sta13
Evt1    AE-1 .    .    .    .    .    .    .    .    .     .     .     .
Evt2    .    .    .    AE-2 .    .    .    .    .    .     .     .     .
Evt3    .    AA-1 AA-8 .    AE-3 AA-8 AA-8 AA-8 AA-8 AA-8  AA-8  AA-8  AA-6
Evt4    .    AA-1 AA-8 .    AE-4 AA-8 AA-8 AA-8 AA-8 AA-8  AA-8  AA-8  AA-6
Evt5    AE-5 .    .    .    .    .    .    .    .    .     .     .     .
Evt6    .    AE-6 AA-8 .    AA-8 AA-8 AA-8 AA-8 AA-8 AA-8  AA-8  AA-8  AA-7
Evt7    .    .    AE-7 .    .    .    .    .    .    .     .     .     .
Evt8    .    .    AE-8 .    .    .    .    .    .    .     .     .     .
Evt9    .    .    .    .    .    DT-1 .    AR-7 .    .     .     .     .
Evt10   .    AA-1 AA-8 .    AA-8 DT-2 AR-6 AA-8 AA-8 AA-8  AA-8  AA-8  AA-6
Evt11   .    .    .    .    .    AR-1 .    .    .    .     .     .     .
Evt12   .    AA-1 AA-8 .    AA-8 AR-2 AR-8 AA-8 AA-8 AA-8  AA-8  AA-8  AA-6
Evt13   .    AA-1 AA-8 .    AA-8 AA-8 AR-3 AA-8 AA-8 AR-10 AR-3  AA-8  AA-6
Evt14   .    .    .    .    .    .    .    AR-4 AR-9 .     .     AR-4  .
Evt15   .    .    AA-1 AA-2 AA-1 AA-1 AA-1 AA-1 AA-1 AA-1  AA-1  AA-1  AA-2*
Evt16   .    AA-2 AA-3 .    AA-3 AA-3 AA-3 AA-3 AA-3 AA-3  AA-3  AA-3  AA-2
Evt17   .    AA-5 AA-4 AA-4 AA-4 AA-4 AA-4 AA-4 AA-4 AA-4  AA-4  AA-4  AR-5
Evt18   .    AA-2 .    .    .    .    .    .    .    .     .     .     AA-2
Evt19   .    AA-1 AA-8 .    AA-8 AA-8 AA-8 AA-8 AA-8 AA-8  AA-8  AA-8  AA-7
";

/// One parsed cell: the action's PS3.8 name, and whether it is the dimse extension.
#[derive(Debug, Clone, Copy)]
struct Cell {
    action: Option<&'static str>,
    extension: bool,
}

/// `grid[event_index][state_index]`.
fn parse_table() -> Vec<Vec<Cell>> {
    let mut lines = TABLE_9_10.lines().filter(|l| !l.trim().is_empty());
    let header: Vec<&str> = lines.next().expect("header").split_whitespace().collect();
    let want_header: Vec<String> = (1..=13).map(|n| format!("Sta{n}")).collect();
    assert_eq!(header, want_header, "grid header");
    let mut grid = Vec::new();
    for (i, line) in lines.enumerate() {
        let mut fields = line.split_whitespace();
        assert_eq!(
            fields.next(),
            Some(format!("Evt{}", i + 1).as_str()),
            "row label"
        );
        let row: Vec<Cell> = fields
            .map(|f| {
                let extension = f.ends_with('*');
                let name = f.trim_end_matches('*');
                Cell {
                    action: if name == "." { None } else { Some(name) },
                    extension,
                }
            })
            .collect();
        assert_eq!(row.len(), 13, "row Evt{} has 13 cells", i + 1);
        grid.push(row);
    }
    assert_eq!(grid.len(), 19, "19 event rows");
    grid
}

/// The standard's action names mapped to the enum, written out here rather than taken from
/// `Action::name` so that a wrong name cannot hide a wrong table entry.
fn action_named(name: &str) -> Action {
    match name {
        "AE-1" => Action::Ae1,
        "AE-2" => Action::Ae2,
        "AE-3" => Action::Ae3,
        "AE-4" => Action::Ae4,
        "AE-5" => Action::Ae5,
        "AE-6" => Action::Ae6,
        "AE-7" => Action::Ae7,
        "AE-8" => Action::Ae8,
        "DT-1" => Action::Dt1,
        "DT-2" => Action::Dt2,
        "AR-1" => Action::Ar1,
        "AR-2" => Action::Ar2,
        "AR-3" => Action::Ar3,
        "AR-4" => Action::Ar4,
        "AR-5" => Action::Ar5,
        "AR-6" => Action::Ar6,
        "AR-7" => Action::Ar7,
        "AR-8" => Action::Ar8,
        "AR-9" => Action::Ar9,
        "AR-10" => Action::Ar10,
        "AA-1" => Action::Aa1,
        "AA-2" => Action::Aa2,
        "AA-3" => Action::Aa3,
        "AA-4" => Action::Aa4,
        "AA-5" => Action::Aa5,
        "AA-6" => Action::Aa6,
        "AA-7" => Action::Aa7,
        "AA-8" => Action::Aa8,
        other => panic!("unknown action {other}"),
    }
}

/// "Next state is ..." of each action definition (PS3.8 Tables 9-6 to 9-9). AE-6 is its
/// acceptable branch; its reject branch (Sta13) is tested on its own.
fn next_state_of(name: &str, role: Role) -> State {
    match name {
        "AE-1" => State::Sta4,
        "AE-2" => State::Sta5,
        "AE-3" | "AE-7" | "DT-1" | "DT-2" => State::Sta6,
        "AE-4" | "AR-3" | "AR-5" | "AA-2" | "AA-3" | "AA-4" | "AA-5" => State::Sta1,
        "AE-5" => State::Sta2,
        "AE-6" => State::Sta3,
        "AE-8" | "AR-4" | "AA-1" | "AA-6" | "AA-7" | "AA-8" => State::Sta13,
        "AR-1" | "AR-6" => State::Sta7,
        "AR-2" | "AR-7" => State::Sta8,
        "AR-8" => match role {
            Role::Requestor => State::Sta9,
            Role::Acceptor => State::Sta10,
        },
        "AR-9" => State::Sta11,
        "AR-10" => State::Sta12,
        other => panic!("unknown action {other}"),
    }
}

/// What the driver is told to do for each action, in order.
fn outputs_of(name: &str) -> Vec<Output> {
    use Output::*;
    match name {
        "AE-1" => vec![ConnectTransport],
        "AE-2" => vec![SendAssociateRq],
        "AE-3" => vec![Indicate(Indication::AssociateConfirmAccept)],
        "AE-4" => vec![Indicate(Indication::AssociateConfirmReject), CloseTransport],
        "AE-5" | "AR-5" | "AA-5" | "AA-6" => vec![],
        "AE-6" => vec![Indicate(Indication::AssociateIndication)],
        "AE-7" => vec![SendAssociateAc],
        "AE-8" => vec![SendAssociateRj],
        "DT-1" | "AR-7" => vec![SendPData],
        "DT-2" | "AR-6" => vec![Indicate(Indication::PData)],
        "AR-1" => vec![SendReleaseRq],
        "AR-2" => vec![Indicate(Indication::ReleaseIndication { collision: false })],
        "AR-3" => vec![Indicate(Indication::ReleaseConfirm), CloseTransport],
        "AR-4" | "AR-9" => vec![SendReleaseRp],
        "AR-8" => vec![Indicate(Indication::ReleaseIndication { collision: true })],
        "AR-10" => vec![Indicate(Indication::ReleaseConfirm)],
        "AA-1" => vec![SendAbort {
            source: AbortSource::ServiceUser,
        }],
        "AA-2" => vec![CloseTransport],
        "AA-3" => vec![Indicate(Indication::PeerAbort), CloseTransport],
        "AA-4" => vec![Indicate(Indication::ProviderAbort {
            cause: ProviderAbortCause::TransportClosed,
        })],
        "AA-7" => vec![SendAbort {
            source: AbortSource::ServiceProvider,
        }],
        "AA-8" => vec![
            SendAbort {
                source: AbortSource::ServiceProvider,
            },
            Indicate(Indication::ProviderAbort {
                cause: ProviderAbortCause::ProtocolError,
            }),
        ],
        other => panic!("unknown action {other}"),
    }
}

#[derive(Debug, PartialEq, Eq, Clone, Copy)]
enum Artim {
    Start,
    Stop,
    Keep,
}

/// ARTIM in each action definition (PS3.8 Tables 9-6 to 9-9). AE-6 is its acceptable
/// branch ("stop ARTIM ... issue A-ASSOCIATE indication").
fn artim_of(name: &str) -> Artim {
    match name {
        "AE-5" | "AE-8" | "AR-4" | "AA-1" | "AA-8" => Artim::Start,
        "AE-6" | "AR-5" | "AA-2" | "AA-5" => Artim::Stop,
        _ => Artim::Keep,
    }
}

const TIMEOUTS: Timeouts = Timeouts {
    artim: Duration::from_secs(5),
    acse: Duration::from_secs(10),
};

fn state_no(n: usize) -> State {
    State::ALL[n - 1]
}

fn event_no(n: usize) -> Event {
    Event::ALL[n - 1]
}

/// Events that lead from Sta1 to `state` on a machine of `role`, or `None` where that role
/// never reaches the state (Sta9/Sta11 are requestor-only, Sta10/Sta12 acceptor-only).
fn path_to(state: State, role: Role) -> Option<Vec<u8>> {
    let path: &[u8] = match (state, role) {
        (State::Sta1, _) => &[],
        (State::Sta2, _) => &[5],
        (State::Sta3, _) => &[5, 6],
        (State::Sta4, _) => &[1],
        (State::Sta5, _) => &[1, 2],
        (State::Sta6, _) => &[1, 2, 3],
        (State::Sta7, _) => &[1, 2, 3, 11],
        (State::Sta8, _) => &[1, 2, 3, 12],
        (State::Sta9, Role::Requestor) => &[1, 2, 3, 11, 12],
        (State::Sta10, Role::Acceptor) => &[5, 6, 7, 11, 12],
        (State::Sta11, Role::Requestor) => &[1, 2, 3, 11, 12, 14],
        (State::Sta12, Role::Acceptor) => &[5, 6, 7, 11, 12, 13],
        (State::Sta13, _) => &[5, 6, 8],
        _ => return None,
    };
    Some(path.to_vec())
}

/// A machine driven to `state` by real events at `t0`.
fn machine_in(state: State, role: Role, t0: Instant) -> Option<StateMachine> {
    let path = path_to(state, role)?;
    let mut m = StateMachine::new(role, TIMEOUTS);
    for n in path {
        m.handle(event_no(usize::from(n)), t0)
            .unwrap_or_else(|e| panic!("path to {state:?}: {e}"));
    }
    assert_eq!(m.state(), state, "path to {state:?}");
    Some(m)
}

/// The timer invariants: ARTIM runs exactly in Sta2 and Sta13, the ACSE wait exactly in the
/// states that await the peer's AC/RJ or RP.
fn assert_timer_invariants(m: &StateMachine, context: &str) {
    let s = m.state();
    assert_eq!(
        m.artim_deadline().is_some(),
        matches!(s, State::Sta2 | State::Sta13),
        "{context}: ARTIM running in {s:?}?"
    );
    assert_eq!(
        m.acse_deadline().is_some(),
        matches!(s, State::Sta5 | State::Sta7 | State::Sta10 | State::Sta11),
        "{context}: ACSE wait running in {s:?}?"
    );
}

// ---------------------------------------------------------------------------------------
// The table
// ---------------------------------------------------------------------------------------

#[test]
fn every_cell_of_table_9_10() {
    let grid = parse_table();
    let mut checked = 0;
    for role in [Role::Requestor, Role::Acceptor] {
        for (e, row) in grid.iter().enumerate() {
            for (s, cell) in row.iter().enumerate() {
                let state = state_no(s + 1);
                let event = event_no(e + 1);
                let want = cell
                    .action
                    .map(|name| (action_named(name), next_state_of(name, role)));
                assert_eq!(
                    transition(state, event, role),
                    want,
                    "cell {state:?} x {event:?} ({role:?})"
                );
                checked += 1;
            }
        }
    }
    assert_eq!(checked, 2 * 13 * 19);
}

#[test]
fn blank_cells_are_the_standards_less_one_extension() {
    let grid = parse_table();
    let cells: Vec<(usize, usize, Cell)> = grid
        .iter()
        .enumerate()
        .flat_map(|(e, row)| row.iter().enumerate().map(move |(s, c)| (e + 1, s + 1, *c)))
        .collect();
    // Table 9-10 has 124 blank cells of 247; dimse fills exactly one of them.
    let blank = cells.iter().filter(|(_, _, c)| c.action.is_none()).count();
    let extensions: Vec<(usize, usize)> = cells
        .iter()
        .filter(|(_, _, c)| c.extension)
        .map(|(e, s, _)| (*e, *s))
        .collect();
    assert_eq!(blank + extensions.len(), 124);
    assert_eq!(extensions, vec![(15, 13)]);
    for role in [Role::Requestor, Role::Acceptor] {
        let none = State::ALL
            .iter()
            .flat_map(|s| Event::ALL.iter().map(move |e| (*s, *e)))
            .filter(|(s, e)| transition(*s, *e, role).is_none())
            .count();
        assert_eq!(none, 123, "{role:?}");
    }
}

#[test]
fn ar8_depends_on_role() {
    assert_eq!(
        transition(State::Sta7, Event::Evt12, Role::Requestor),
        Some((Action::Ar8, State::Sta9))
    );
    assert_eq!(
        transition(State::Sta7, Event::Evt12, Role::Acceptor),
        Some((Action::Ar8, State::Sta10))
    );
    // No other cell depends on the role.
    for s in State::ALL {
        for e in Event::ALL {
            if (s, e) != (State::Sta7, Event::Evt12) {
                assert_eq!(
                    transition(s, e, Role::Requestor),
                    transition(s, e, Role::Acceptor),
                    "{s:?} x {e:?}"
                );
            }
        }
    }
}

#[test]
fn names_and_numbers() {
    for (i, s) in State::ALL.iter().enumerate() {
        assert_eq!(usize::from(s.number()), i + 1);
        assert_eq!(s.to_string(), format!("Sta{}", i + 1));
        assert!(!s.description().is_empty());
    }
    for (i, e) in Event::ALL.iter().enumerate() {
        assert_eq!(usize::from(e.number()), i + 1);
        assert_eq!(e.to_string(), format!("Evt{}", i + 1));
        assert!(!e.description().is_empty());
    }
    let names: Vec<String> = (1..=8)
        .map(|n| format!("AE-{n}"))
        .chain((1..=2).map(|n| format!("DT-{n}")))
        .chain((1..=10).map(|n| format!("AR-{n}")))
        .chain((1..=8).map(|n| format!("AA-{n}")))
        .collect();
    assert_eq!(names.len(), Action::ALL.len());
    for (a, name) in Action::ALL.iter().zip(&names) {
        assert_eq!(a.name(), name);
        assert_eq!(a.to_string(), *name);
        assert_eq!(action_named(name), *a);
    }
    assert_eq!(
        Event::Evt3.description(),
        "A-ASSOCIATE-AC PDU (received on transport connection)"
    );
}

// ---------------------------------------------------------------------------------------
// The machine, cell by cell
// ---------------------------------------------------------------------------------------

#[test]
fn machine_performs_every_cell() {
    let grid = parse_table();
    let t0 = Instant::now();
    // Later than t0 so that a (re)started ARTIM is told apart from one left running.
    let t1 = t0 + Duration::from_secs(1);
    let mut valid = 0;
    let mut invalid = 0;
    for role in [Role::Requestor, Role::Acceptor] {
        for (s, state) in State::ALL.iter().enumerate() {
            for (e, event) in Event::ALL.iter().enumerate() {
                let Some(mut m) = machine_in(*state, role, t0) else {
                    continue;
                };
                let before = m.clone();
                let ctx = format!("{state:?} x {event:?} ({role:?})");
                let result = m.handle(*event, t1);
                match grid[e][s].action {
                    None => {
                        assert_eq!(
                            result,
                            Err(InvalidEvent {
                                state: *state,
                                event: *event
                            }),
                            "{ctx}"
                        );
                        assert_eq!(m.state(), *state, "{ctx}: state unchanged");
                        assert_eq!(m.deadline(), before.deadline(), "{ctx}: timers unchanged");
                        invalid += 1;
                    }
                    Some(name) => {
                        let out = result.unwrap_or_else(|err| panic!("{ctx}: {err}"));
                        assert_eq!(out.to_vec(), outputs_of(name), "{ctx}: outputs of {name}");
                        assert_eq!(m.state(), next_state_of(name, role), "{ctx}: next state");
                        let want_artim = match artim_of(name) {
                            Artim::Start => Some(t1 + TIMEOUTS.artim),
                            Artim::Stop => None,
                            Artim::Keep => before.artim_deadline(),
                        };
                        assert_eq!(m.artim_deadline(), want_artim, "{ctx}: ARTIM after {name}");
                        assert_timer_invariants(&m, &ctx);
                        valid += 1;
                    }
                }
            }
        }
    }
    // Each role reaches 11 of the 13 states: 2 x 11 x 19 cells.
    assert_eq!(valid + invalid, 2 * 11 * 19);
}

#[test]
fn ae6_reject_branch() {
    let t0 = Instant::now();
    let t1 = t0 + Duration::from_secs(2);
    let mut m = machine_in(State::Sta2, Role::Acceptor, t0).expect("Sta2");
    let out = m.handle_associate_rq(false, t1).expect("AE-6");
    assert_eq!(out.as_slice(), &[Output::SendAssociateRj]);
    assert_eq!(m.state(), State::Sta13);
    // Stopped, then started again at t1: not the AE-5 deadline.
    assert_eq!(m.artim_deadline(), Some(t1 + TIMEOUTS.artim));
    assert_timer_invariants(&m, "AE-6 reject");

    let mut m = machine_in(State::Sta2, Role::Acceptor, t0).expect("Sta2");
    let out = m.handle_associate_rq(true, t1).expect("AE-6");
    assert_eq!(
        out.as_slice(),
        &[Output::Indicate(Indication::AssociateIndication)]
    );
    assert_eq!(m.state(), State::Sta3);
    assert_eq!(m.deadline(), None);
}

#[test]
fn handle_associate_rq_elsewhere_is_evt6() {
    let t0 = Instant::now();
    for role in [Role::Requestor, Role::Acceptor] {
        for state in State::ALL {
            if state == State::Sta2 {
                continue;
            }
            for acceptable in [true, false] {
                let (Some(mut a), Some(mut b)) =
                    (machine_in(state, role, t0), machine_in(state, role, t0))
                else {
                    continue;
                };
                assert_eq!(
                    a.handle_associate_rq(acceptable, t0),
                    b.handle(Event::Evt6, t0),
                    "{state:?} {role:?} {acceptable}"
                );
                assert_eq!(a.state(), b.state());
            }
        }
    }
}

#[test]
fn abort_request_in_sta13_closes_at_once() {
    let t0 = Instant::now();
    let mut m = machine_in(State::Sta13, Role::Acceptor, t0).expect("Sta13");
    let out = m.handle(Event::Evt15, t0).expect("Evt15 in Sta13");
    assert_eq!(out.as_slice(), &[Output::CloseTransport]);
    assert_eq!(m.state(), State::Sta1);
    assert_eq!(m.deadline(), None);
}

#[test]
fn invalid_event_reports_itself() {
    let mut m = StateMachine::new(Role::Requestor, TIMEOUTS);
    let err = m
        .handle(Event::Evt9, Instant::now())
        .expect_err("P-DATA in Sta1");
    assert_eq!(
        err,
        InvalidEvent {
            state: State::Sta1,
            event: Event::Evt9
        }
    );
    let text = err.to_string();
    assert!(
        text.contains("Evt9") && text.contains("Sta1") && text.contains("Table 9-10"),
        "{text}"
    );
    let _: &dyn std::error::Error = &err;
}

// ---------------------------------------------------------------------------------------
// ARTIM
// ---------------------------------------------------------------------------------------

#[test]
fn artim_expiry_in_sta2_closes() {
    let t0 = Instant::now();
    let mut m = StateMachine::new(Role::Acceptor, TIMEOUTS);
    assert!(m.handle(Event::Evt5, t0).expect("AE-5").is_empty());
    assert_eq!(m.deadline(), Some(t0 + TIMEOUTS.artim));

    // Early: nothing.
    let early = t0 + TIMEOUTS.artim - Duration::from_millis(1);
    assert!(m.poll_timeout(early).is_empty());
    assert_eq!(m.state(), State::Sta2);

    let out = m.poll_timeout(t0 + TIMEOUTS.artim);
    assert_eq!(out.as_slice(), &[Output::CloseTransport]);
    assert_eq!(m.state(), State::Sta1);
    assert_eq!(m.deadline(), None);
    // Late polls after the close do nothing more.
    assert!(m.poll_timeout(t0 + Duration::from_secs(3600)).is_empty());
    assert_eq!(m.state(), State::Sta1);
}

/// Each way into Sta13 starts ARTIM, and its expiry closes the transport.
#[test]
fn artim_expiry_in_sta13_closes_for_every_way_in() {
    type Way = (&'static str, Role, &'static [u8]);
    let ways: [Way; 8] = [
        ("AE-8 (user reject)", Role::Acceptor, &[5, 6, 8]),
        (
            "AR-4 (release response)",
            Role::Acceptor,
            &[5, 6, 7, 12, 14],
        ),
        (
            "AR-4 (collision, acceptor)",
            Role::Acceptor,
            &[5, 6, 7, 11, 12, 13, 14],
        ),
        ("AA-1 (user abort)", Role::Requestor, &[1, 2, 3, 15]),
        ("AA-1 (unexpected PDU in Sta2)", Role::Acceptor, &[5, 10]),
        ("AA-8 (unexpected PDU)", Role::Requestor, &[1, 2, 3, 3]),
        ("AA-8 (invalid PDU)", Role::Acceptor, &[5, 6, 7, 19]),
        ("AE-6 reject", Role::Acceptor, &[5]),
    ];
    for (what, role, path) in ways {
        let t0 = Instant::now();
        let t1 = t0 + Duration::from_secs(1);
        let mut m = StateMachine::new(role, TIMEOUTS);
        // The step into Sta13 happens at t1, so the deadline must come from it.
        if what == "AE-6 reject" {
            for n in path {
                m.handle(event_no(usize::from(*n)), t0).expect(what);
            }
            m.handle_associate_rq(false, t1).expect(what);
        } else {
            let (last, init) = path.split_last().expect("non-empty path");
            for n in init {
                m.handle(event_no(usize::from(*n)), t0).expect(what);
            }
            m.handle(event_no(usize::from(*last)), t1).expect(what);
        }
        assert_eq!(m.state(), State::Sta13, "{what}");
        assert_eq!(m.deadline(), Some(t1 + TIMEOUTS.artim), "{what}");
        assert!(m
            .poll_timeout(t1 + TIMEOUTS.artim - Duration::from_nanos(1))
            .is_empty());
        assert_eq!(
            m.poll_timeout(t1 + TIMEOUTS.artim).as_slice(),
            &[Output::CloseTransport],
            "{what}"
        );
        assert_eq!(m.state(), State::Sta1, "{what}");
        assert_eq!(m.deadline(), None, "{what}");
    }
}

#[test]
fn aa1_restarts_a_running_artim() {
    let t0 = Instant::now();
    let t1 = t0 + Duration::from_secs(3);
    let mut m = StateMachine::new(Role::Acceptor, TIMEOUTS);
    m.handle(Event::Evt5, t0).expect("AE-5");
    // A P-DATA-TF instead of an A-ASSOCIATE-RQ: AA-1.
    let out = m.handle(Event::Evt10, t1).expect("AA-1");
    assert_eq!(
        out.as_slice(),
        &[Output::SendAbort {
            source: AbortSource::ServiceUser
        }]
    );
    assert_eq!(m.artim_deadline(), Some(t1 + TIMEOUTS.artim));
    assert!(
        m.poll_timeout(t0 + TIMEOUTS.artim).is_empty(),
        "old deadline is gone"
    );
    assert_eq!(m.state(), State::Sta13);
}

#[test]
fn pdus_in_sta13_do_not_postpone_the_close() {
    let t0 = Instant::now();
    let mut m = machine_in(State::Sta13, Role::Acceptor, t0).expect("Sta13");
    let deadline = m.deadline();
    let mut t = t0;
    for e in [
        Event::Evt10,
        Event::Evt12,
        Event::Evt6,
        Event::Evt19,
        Event::Evt3,
    ] {
        t += Duration::from_secs(1);
        m.handle(e, t).expect("AA-6 / AA-7");
        assert_eq!(m.state(), State::Sta13);
        assert_eq!(m.deadline(), deadline, "{e:?}");
    }
    assert_eq!(
        m.poll_timeout(t0 + TIMEOUTS.artim).as_slice(),
        &[Output::CloseTransport]
    );
}

#[test]
fn artim_is_stopped_by_ae6_aa2_aa5_ar5() {
    let t0 = Instant::now();
    let far = t0 + Duration::from_secs(3600);
    // AE-6: Sta2 -> Sta3.
    let mut m = machine_in(State::Sta3, Role::Acceptor, t0).expect("Sta3");
    assert_eq!(m.deadline(), None);
    assert!(m.poll_timeout(far).is_empty());
    assert_eq!(m.state(), State::Sta3);
    // AA-5: transport closed in Sta2; AA-2: A-ABORT in Sta2; AR-5: transport closed in Sta13.
    for (from, event) in [
        (State::Sta2, Event::Evt17),
        (State::Sta2, Event::Evt16),
        (State::Sta13, Event::Evt17),
        (State::Sta13, Event::Evt16),
    ] {
        let mut m = machine_in(from, Role::Acceptor, t0).expect("state");
        assert!(m.deadline().is_some());
        m.handle(event, t0).expect("stop");
        assert_eq!(m.state(), State::Sta1);
        assert_eq!(m.deadline(), None, "{from:?} x {event:?}");
        assert!(m.poll_timeout(far).is_empty());
    }
}

#[test]
fn no_expiry_where_artim_does_not_run() {
    let t0 = Instant::now();
    let far = t0 + Duration::from_secs(3600);
    for role in [Role::Requestor, Role::Acceptor] {
        for state in State::ALL {
            // Sta2/Sta13 run ARTIM; Sta5/Sta7/Sta10/Sta11 run the ACSE wait (tested below).
            if matches!(
                state,
                State::Sta2
                    | State::Sta13
                    | State::Sta5
                    | State::Sta7
                    | State::Sta10
                    | State::Sta11
            ) {
                continue;
            }
            let Some(mut m) = machine_in(state, role, t0) else {
                continue;
            };
            assert_eq!(m.deadline(), None, "{state:?}");
            assert!(m.poll_timeout(far).is_empty(), "{state:?}");
            assert_eq!(m.state(), state);
            // Raising Evt18 by hand is a blank cell there.
            assert!(m.handle(Event::Evt18, far).is_err(), "{state:?}");
        }
    }
}

#[test]
fn unrepresentable_deadline_means_no_deadline() {
    let timeouts = Timeouts {
        artim: Duration::MAX,
        acse: Duration::MAX,
    };
    let t0 = Instant::now();
    let mut m = StateMachine::new(Role::Acceptor, timeouts);
    m.handle(Event::Evt5, t0).expect("AE-5");
    assert_eq!(m.state(), State::Sta2);
    assert_eq!(m.deadline(), None);
    let mut m = StateMachine::new(Role::Requestor, timeouts);
    m.handle(Event::Evt1, t0).expect("AE-1");
    m.handle(Event::Evt2, t0).expect("AE-2");
    assert_eq!(m.deadline(), None);
    assert_eq!(Timeouts::default().artim, Duration::from_secs(30));
}

// ---------------------------------------------------------------------------------------
// Bounded waits for the peer (Sta5, Sta7, Sta10, Sta11)
// ---------------------------------------------------------------------------------------

fn timeout_outputs(indication: Indication) -> [Output; 3] {
    [
        Output::SendAbort {
            source: AbortSource::ServiceUser,
        },
        Output::CloseTransport,
        Output::Indicate(indication),
    ]
}

#[test]
fn sta5_wait_is_bounded() {
    let t0 = Instant::now();
    let t1 = t0 + Duration::from_secs(1);
    let mut m = StateMachine::new(Role::Requestor, TIMEOUTS);
    m.handle(Event::Evt1, t0).expect("AE-1");
    assert_eq!(
        m.deadline(),
        None,
        "Sta4: the connect timeout is the driver's"
    );
    m.handle(Event::Evt2, t1).expect("AE-2");
    assert_eq!(m.deadline(), Some(t1 + TIMEOUTS.acse));
    assert!(m
        .poll_timeout(t1 + TIMEOUTS.acse - Duration::from_nanos(1))
        .is_empty());
    assert_eq!(m.state(), State::Sta5);
    let out = m.poll_timeout(t1 + TIMEOUTS.acse);
    assert_eq!(
        out.as_slice(),
        &timeout_outputs(Indication::AssociateTimeout)
    );
    assert_eq!(m.state(), State::Sta1);
    assert_eq!(m.deadline(), None);
}

#[test]
fn sta5_wait_ends_with_the_answer() {
    for (answer, state) in [(Event::Evt3, State::Sta6), (Event::Evt4, State::Sta1)] {
        let t0 = Instant::now();
        let mut m = machine_in(State::Sta5, Role::Requestor, t0).expect("Sta5");
        m.handle(answer, t0 + Duration::from_secs(1))
            .expect("answer");
        assert_eq!(m.state(), state);
        assert_eq!(m.deadline(), None);
        assert!(m.poll_timeout(t0 + Duration::from_secs(3600)).is_empty());
        assert_eq!(m.state(), state);
    }
}

#[test]
fn sta7_wait_is_bounded_and_not_extended_by_data() {
    let t0 = Instant::now();
    let mut m = machine_in(State::Sta7, Role::Requestor, t0).expect("Sta7");
    assert_eq!(m.deadline(), Some(t0 + TIMEOUTS.acse));
    // The peer still sends data (AR-6): the deadline stays.
    for k in 1..5 {
        let out = m
            .handle(Event::Evt10, t0 + Duration::from_secs(k))
            .expect("AR-6");
        assert_eq!(out.as_slice(), &[Output::Indicate(Indication::PData)]);
        assert_eq!(m.deadline(), Some(t0 + TIMEOUTS.acse));
    }
    let out = m.poll_timeout(t0 + TIMEOUTS.acse);
    assert_eq!(out.as_slice(), &timeout_outputs(Indication::ReleaseTimeout));
    assert_eq!(m.state(), State::Sta1);
    assert_eq!(m.deadline(), None);
}

#[test]
fn collision_waits_for_rp_are_bounded() {
    let t0 = Instant::now();
    let t1 = t0 + Duration::from_secs(1);
    // Sta10 (acceptor), Sta11 (requestor): both await the peer's A-RELEASE-RP.
    for (state, role) in [
        (State::Sta10, Role::Acceptor),
        (State::Sta11, Role::Requestor),
    ] {
        let path = path_to(state, role).expect("path");
        let (last, init) = path.split_last().expect("non-empty");
        let mut m = StateMachine::new(role, TIMEOUTS);
        for n in init {
            m.handle(event_no(usize::from(*n)), t0).expect("path");
        }
        m.handle(event_no(usize::from(*last)), t1).expect("last");
        assert_eq!(m.state(), state);
        assert_eq!(
            m.deadline(),
            Some(t1 + TIMEOUTS.acse),
            "{state:?}: restarted on entry"
        );
        let out = m.poll_timeout(t1 + TIMEOUTS.acse);
        assert_eq!(out.as_slice(), &timeout_outputs(Indication::ReleaseTimeout));
        assert_eq!(m.state(), State::Sta1);
    }
    // Sta9 / Sta12 await the local user: no deadline.
    for (state, role) in [
        (State::Sta9, Role::Requestor),
        (State::Sta12, Role::Acceptor),
    ] {
        let m = machine_in(state, role, t0).expect("state");
        assert_eq!(m.deadline(), None, "{state:?}");
    }
}

// ---------------------------------------------------------------------------------------
// Random walk: invariants hold whatever the order of events
// ---------------------------------------------------------------------------------------

#[test]
fn random_walk_keeps_invariants() {
    // A small xorshift generator: deterministic, no dependency.
    let mut seed: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut next = move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    let mut visited = [false; 13];
    for role in [Role::Requestor, Role::Acceptor] {
        let mut m = StateMachine::new(role, TIMEOUTS);
        let mut now = Instant::now();
        for step in 0..200_000 {
            let r = next();
            now += Duration::from_millis(r % 1500);
            let before = m.clone();
            let ctx = format!("{role:?} step {step} from {:?}", before.state());
            match (r >> 16) % 23 {
                // Now and then let time run out.
                0..=1 => {
                    let out = m.poll_timeout(now);
                    if before.deadline().is_some_and(|d| now >= d) {
                        assert_eq!(m.state(), State::Sta1, "{ctx}: expiry ends in Sta1");
                        assert!(out.contains(&Output::CloseTransport), "{ctx}: {out:?}");
                    } else {
                        assert!(out.is_empty(), "{ctx}");
                        assert_eq!(m.state(), before.state(), "{ctx}");
                    }
                }
                2 => {
                    let acceptable = r & 1 == 0;
                    let res = m.handle_associate_rq(acceptable, now);
                    check_step(&before, &m, Event::Evt6, res.is_ok(), &ctx);
                }
                k => {
                    // Half the time any event (mostly blank cells), half the time one the
                    // state accepts, so the walk also gets deep (collisions need 5 steps).
                    let pick = usize::try_from(k).expect("small");
                    let valid: Vec<Event> = Event::ALL
                        .into_iter()
                        .filter(|e| transition(m.state(), *e, role).is_some())
                        .collect();
                    let event = if r & 2 == 0 || valid.is_empty() {
                        Event::ALL[pick % 19]
                    } else {
                        valid[pick % valid.len()]
                    };
                    let res = m.handle(event, now);
                    check_step(&before, &m, event, res.is_ok(), &ctx);
                }
            }
            assert_timer_invariants(&m, &ctx);
            visited[usize::from(m.state().number()) - 1] = true;
        }
    }
    assert!(
        visited.iter().all(|v| *v),
        "the walk reaches every state: {visited:?}"
    );
}

fn check_step(before: &StateMachine, after: &StateMachine, event: Event, ok: bool, ctx: &str) {
    let cell = transition(before.state(), event, before.role());
    assert_eq!(ok, cell.is_some(), "{ctx}: {event:?}");
    match cell {
        None => {
            assert_eq!(after.state(), before.state(), "{ctx}");
            assert_eq!(after.deadline(), before.deadline(), "{ctx}");
        }
        Some((Action::Ae6, _)) => {
            assert!(matches!(after.state(), State::Sta3 | State::Sta13), "{ctx}");
        }
        Some((_, next)) => assert_eq!(after.state(), next, "{ctx}"),
    }
}

// ---------------------------------------------------------------------------------------
// Two machines against each other
// ---------------------------------------------------------------------------------------

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Side {
    Req,
    Acc,
}

impl Side {
    fn other(self) -> Side {
        match self {
            Side::Req => Side::Acc,
            Side::Acc => Side::Req,
        }
    }
}

/// An in-memory transport between a requestor and an acceptor. PDUs are queued as the
/// events they raise at the other end, in order, like bytes on a TCP stream; closing queues
/// Evt17 behind what was already sent and discards what the closer had not yet read.
struct Link {
    now: Instant,
    req: StateMachine,
    acc: StateMachine,
    to_req: VecDeque<Event>,
    to_acc: VecDeque<Event>,
    open: bool,
    req_seen: Vec<Indication>,
    acc_seen: Vec<Indication>,
    req_states: Vec<State>,
    acc_states: Vec<State>,
}

impl Link {
    fn new() -> Self {
        Link {
            now: Instant::now(),
            req: StateMachine::new(Role::Requestor, TIMEOUTS),
            acc: StateMachine::new(Role::Acceptor, TIMEOUTS),
            to_req: VecDeque::new(),
            to_acc: VecDeque::new(),
            open: false,
            req_seen: Vec::new(),
            acc_seen: Vec::new(),
            req_states: vec![State::Sta1],
            acc_states: vec![State::Sta1],
        }
    }

    fn machine(&mut self, side: Side) -> &mut StateMachine {
        match side {
            Side::Req => &mut self.req,
            Side::Acc => &mut self.acc,
        }
    }

    fn inbox(&mut self, side: Side) -> &mut VecDeque<Event> {
        match side {
            Side::Req => &mut self.to_req,
            Side::Acc => &mut self.to_acc,
        }
    }

    fn state(&self, side: Side) -> State {
        match side {
            Side::Req => self.req.state(),
            Side::Acc => self.acc.state(),
        }
    }

    fn seen(&self, side: Side) -> &[Indication] {
        match side {
            Side::Req => &self.req_seen,
            Side::Acc => &self.acc_seen,
        }
    }

    /// The local user (or transport) at `side` raises `event`.
    fn raise(&mut self, side: Side, event: Event) {
        let now = self.now;
        let out = self
            .machine(side)
            .handle(event, now)
            .unwrap_or_else(|e| panic!("{side:?}: {e}"));
        self.perform(side, out);
    }

    fn perform(&mut self, side: Side, out: Outputs) {
        let st = self.state(side);
        match side {
            Side::Req => self.req_states.push(st),
            Side::Acc => self.acc_states.push(st),
        }
        let peer = side.other();
        for o in out {
            let pdu_event = match o {
                Output::ConnectTransport => {
                    // The peer accepts at once; both ends learn of it.
                    self.open = true;
                    self.inbox(peer).push_back(Event::Evt5);
                    self.inbox(side).push_back(Event::Evt2);
                    None
                }
                Output::SendAssociateRq => Some(Event::Evt6),
                Output::SendAssociateAc => Some(Event::Evt3),
                Output::SendAssociateRj => Some(Event::Evt4),
                Output::SendPData => Some(Event::Evt10),
                Output::SendReleaseRq => Some(Event::Evt12),
                Output::SendReleaseRp => Some(Event::Evt13),
                Output::SendAbort { .. } => Some(Event::Evt16),
                Output::CloseTransport => {
                    // The closer reads nothing more; the peer sees the close after whatever
                    // was already on its way (unless it closed first).
                    self.inbox(side).clear();
                    if self.open {
                        self.open = false;
                        self.inbox(peer).push_back(Event::Evt17);
                    }
                    None
                }
                Output::Indicate(i) => {
                    match side {
                        Side::Req => self.req_seen.push(i),
                        Side::Acc => self.acc_seen.push(i),
                    }
                    None
                }
            };
            if let Some(e) = pdu_event {
                assert!(self.open, "{side:?} sends {o:?} on a closed transport");
                self.inbox(peer).push_back(e);
            }
        }
    }

    /// Deliver one queued event to `side`; false if none was queued.
    fn deliver(&mut self, side: Side) -> bool {
        let Some(event) = self.inbox(side).pop_front() else {
            return false;
        };
        self.raise(side, event);
        true
    }

    /// Deliver until both ends are quiet.
    fn settle(&mut self) {
        while self.deliver(Side::Req) | self.deliver(Side::Acc) {}
    }

    /// The transport fails under both ends.
    fn drop_transport(&mut self) {
        assert!(self.open);
        self.open = false;
        self.to_req.clear();
        self.to_acc.clear();
        self.to_req.push_back(Event::Evt17);
        self.to_acc.push_back(Event::Evt17);
    }

    fn advance(&mut self, by: Duration) {
        self.now += by;
    }

    fn poll(&mut self, side: Side) {
        let now = self.now;
        let out = self.machine(side).poll_timeout(now);
        self.perform(side, out);
    }

    /// Requestor asks, acceptor's user accepts: both in Sta6.
    fn associate(&mut self) {
        self.raise(Side::Req, Event::Evt1);
        self.settle();
        assert_eq!(self.state(Side::Acc), State::Sta3);
        assert_eq!(self.acc_seen, vec![Indication::AssociateIndication]);
        self.raise(Side::Acc, Event::Evt7);
        self.settle();
        assert_eq!(self.state(Side::Req), State::Sta6);
        assert_eq!(self.state(Side::Acc), State::Sta6);
        assert_eq!(self.req_seen, vec![Indication::AssociateConfirmAccept]);
        self.req_seen.clear();
        self.acc_seen.clear();
    }

    fn assert_both_idle(&self) {
        assert_eq!(self.req.state(), State::Sta1);
        assert_eq!(self.acc.state(), State::Sta1);
        assert_eq!(self.req.deadline(), None);
        assert_eq!(self.acc.deadline(), None);
        assert!(!self.open);
        assert!(self.to_req.is_empty() && self.to_acc.is_empty());
    }
}

#[test]
fn scenario_accept_exchange_release() {
    let mut l = Link::new();
    l.associate();
    assert_eq!(
        l.req_states,
        vec![State::Sta1, State::Sta4, State::Sta5, State::Sta6]
    );
    assert_eq!(
        l.acc_states,
        vec![State::Sta1, State::Sta2, State::Sta3, State::Sta6]
    );
    // Data both ways.
    l.raise(Side::Req, Event::Evt9);
    l.raise(Side::Acc, Event::Evt9);
    l.raise(Side::Req, Event::Evt9);
    l.settle();
    assert_eq!(l.acc_seen, vec![Indication::PData, Indication::PData]);
    assert_eq!(l.req_seen, vec![Indication::PData]);
    l.req_seen.clear();
    l.acc_seen.clear();
    // Release: the acceptor still sends data before answering (AR-7 / AR-6).
    l.raise(Side::Req, Event::Evt11);
    l.settle();
    assert_eq!(l.state(Side::Req), State::Sta7);
    assert_eq!(l.state(Side::Acc), State::Sta8);
    assert_eq!(
        l.acc_seen,
        vec![Indication::ReleaseIndication { collision: false }]
    );
    l.raise(Side::Acc, Event::Evt9);
    l.settle();
    assert_eq!(l.req_seen, vec![Indication::PData]);
    assert_eq!(l.state(Side::Req), State::Sta7);
    l.raise(Side::Acc, Event::Evt14);
    assert_eq!(l.state(Side::Acc), State::Sta13);
    l.settle();
    assert_eq!(
        l.req_seen,
        vec![Indication::PData, Indication::ReleaseConfirm]
    );
    l.assert_both_idle();
}

#[test]
fn scenario_release_requested_by_acceptor() {
    let mut l = Link::new();
    l.associate();
    l.raise(Side::Acc, Event::Evt11);
    l.settle();
    assert_eq!(l.state(Side::Acc), State::Sta7);
    assert_eq!(l.state(Side::Req), State::Sta8);
    l.raise(Side::Req, Event::Evt14);
    l.settle();
    assert_eq!(l.acc_seen, vec![Indication::ReleaseConfirm]);
    assert_eq!(
        l.req_seen,
        vec![Indication::ReleaseIndication { collision: false }]
    );
    l.assert_both_idle();
}

#[test]
fn scenario_user_reject() {
    let mut l = Link::new();
    l.raise(Side::Req, Event::Evt1);
    l.settle();
    l.raise(Side::Acc, Event::Evt8);
    assert_eq!(l.state(Side::Acc), State::Sta13);
    assert!(l.acc.artim_deadline().is_some());
    l.settle();
    assert_eq!(l.req_seen, vec![Indication::AssociateConfirmReject]);
    // The requestor closed (AE-4); the acceptor saw Evt17 in Sta13 (AR-5).
    assert_eq!(l.acc_states.last(), Some(&State::Sta1));
    assert_eq!(l.acc_states[l.acc_states.len() - 2], State::Sta13);
    l.assert_both_idle();
}

#[test]
fn scenario_provider_reject() {
    let mut l = Link::new();
    l.raise(Side::Req, Event::Evt1);
    // Deliver Evt5 and Evt2, then the RQ with the provider's verdict "not acceptable".
    assert!(l.deliver(Side::Acc));
    assert!(l.deliver(Side::Req));
    assert_eq!(l.to_acc.pop_front(), Some(Event::Evt6));
    let now = l.now;
    let out = l.acc.handle_associate_rq(false, now).expect("AE-6");
    l.perform(Side::Acc, out);
    assert_eq!(l.state(Side::Acc), State::Sta13);
    l.settle();
    assert!(
        l.acc_seen.is_empty(),
        "the acceptor's user never hears of it"
    );
    assert_eq!(l.req_seen, vec![Indication::AssociateConfirmReject]);
    l.assert_both_idle();
}

#[test]
fn scenario_release_collision() {
    let mut l = Link::new();
    l.associate();
    // Both users ask to release before either A-RELEASE-RQ arrives.
    l.raise(Side::Req, Event::Evt11);
    l.raise(Side::Acc, Event::Evt11);
    l.deliver(Side::Req);
    l.deliver(Side::Acc);
    assert_eq!(l.state(Side::Req), State::Sta9);
    assert_eq!(l.state(Side::Acc), State::Sta10);
    let collision = Indication::ReleaseIndication { collision: true };
    assert_eq!(l.req_seen, vec![collision]);
    assert_eq!(l.acc_seen, vec![collision]);
    // The acceptor's user may not answer yet (Sta10 awaits the requestor's RP).
    let now = l.now;
    assert!(l.acc.handle(Event::Evt14, now).is_err());
    // Requestor's user answers first (AR-9 -> Sta11).
    l.raise(Side::Req, Event::Evt14);
    assert_eq!(l.state(Side::Req), State::Sta11);
    l.deliver(Side::Acc);
    assert_eq!(l.state(Side::Acc), State::Sta12);
    assert_eq!(l.acc_seen, vec![collision, Indication::ReleaseConfirm]);
    // Then the acceptor's user (AR-4 -> Sta13), and the requestor closes (AR-3).
    l.raise(Side::Acc, Event::Evt14);
    assert_eq!(l.state(Side::Acc), State::Sta13);
    l.settle();
    assert_eq!(l.req_seen, vec![collision, Indication::ReleaseConfirm]);
    assert_eq!(
        l.req_states[4..],
        [State::Sta7, State::Sta9, State::Sta11, State::Sta1]
    );
    assert_eq!(
        l.acc_states[4..],
        [
            State::Sta7,
            State::Sta10,
            State::Sta12,
            State::Sta13,
            State::Sta1
        ]
    );
    l.assert_both_idle();
}

#[test]
fn scenario_abort_from_each_side() {
    for aborter in [Side::Req, Side::Acc] {
        let mut l = Link::new();
        l.associate();
        l.raise(aborter, Event::Evt15);
        assert_eq!(l.state(aborter), State::Sta13);
        l.settle();
        assert!(
            l.seen(aborter).is_empty(),
            "{aborter:?}: the aborting user is not told"
        );
        assert_eq!(l.seen(aborter.other()), &[Indication::PeerAbort]);
        l.assert_both_idle();
    }
}

#[test]
fn scenario_abort_and_peer_never_closes() {
    let mut l = Link::new();
    l.associate();
    l.raise(Side::Req, Event::Evt15);
    // The acceptor never reads: only ARTIM gets the requestor out of Sta13.
    l.advance(TIMEOUTS.artim);
    l.poll(Side::Req);
    assert_eq!(l.state(Side::Req), State::Sta1);
    assert!(!l.open);
    // The abort PDU and then the close reach the acceptor later.
    l.settle();
    assert_eq!(l.acc_seen, vec![Indication::PeerAbort]);
    assert_eq!(l.state(Side::Acc), State::Sta1);
}

#[test]
fn scenario_transport_lost() {
    // During data transfer, during establishment, during release.
    type Setup = (&'static str, fn(&mut Link));
    let setups: [Setup; 3] = [
        ("Sta6", |l| l.associate()),
        ("Sta5/Sta3", |l| {
            l.raise(Side::Req, Event::Evt1);
            l.settle();
        }),
        ("Sta7/Sta8", |l| {
            l.associate();
            l.raise(Side::Req, Event::Evt11);
            l.settle();
        }),
    ];
    for (what, setup) in setups {
        let mut l = Link::new();
        setup(&mut l);
        l.req_seen.clear();
        l.acc_seen.clear();
        l.drop_transport();
        l.settle();
        let lost = Indication::ProviderAbort {
            cause: ProviderAbortCause::TransportClosed,
        };
        assert_eq!(l.req_seen, vec![lost], "{what}");
        assert_eq!(l.acc_seen, vec![lost], "{what}");
        l.assert_both_idle();
    }
}

#[test]
fn scenario_protocol_error() {
    let mut l = Link::new();
    l.associate();
    // The requestor's driver could not parse a PDU: Evt19, AA-8.
    l.raise(Side::Req, Event::Evt19);
    assert_eq!(
        l.req_seen,
        vec![Indication::ProviderAbort {
            cause: ProviderAbortCause::ProtocolError
        }]
    );
    assert_eq!(l.state(Side::Req), State::Sta13);
    l.settle();
    assert_eq!(l.acc_seen, vec![Indication::PeerAbort]);
    l.assert_both_idle();
}

#[test]
fn scenario_silent_peer_after_connect() {
    let mut l = Link::new();
    l.raise(Side::Req, Event::Evt1);
    // The connection opens but the requestor's A-ASSOCIATE-RQ never arrives.
    l.deliver(Side::Acc);
    assert_eq!(l.state(Side::Acc), State::Sta2);
    l.to_acc.clear();
    l.deliver(Side::Req);
    assert_eq!(l.state(Side::Req), State::Sta5);
    l.to_acc.clear();
    l.advance(TIMEOUTS.artim);
    l.poll(Side::Acc);
    assert_eq!(l.state(Side::Acc), State::Sta1);
    l.settle();
    assert_eq!(
        l.req_seen,
        vec![Indication::ProviderAbort {
            cause: ProviderAbortCause::TransportClosed
        }]
    );
    l.assert_both_idle();
}

#[test]
fn scenario_unanswered_association_and_release() {
    // The acceptor's user never answers the A-ASSOCIATE indication.
    let mut l = Link::new();
    l.raise(Side::Req, Event::Evt1);
    l.settle();
    assert_eq!(l.state(Side::Acc), State::Sta3);
    l.advance(TIMEOUTS.acse);
    l.poll(Side::Req);
    assert_eq!(l.req_seen, vec![Indication::AssociateTimeout]);
    l.settle();
    assert_eq!(l.acc_seen.last(), Some(&Indication::PeerAbort));
    l.assert_both_idle();

    // The acceptor's user never answers the A-RELEASE indication.
    let mut l = Link::new();
    l.associate();
    l.raise(Side::Req, Event::Evt11);
    l.settle();
    assert_eq!(l.state(Side::Acc), State::Sta8);
    l.advance(TIMEOUTS.acse);
    l.poll(Side::Req);
    assert_eq!(l.req_seen, vec![Indication::ReleaseTimeout]);
    l.settle();
    assert_eq!(l.acc_seen.last(), Some(&Indication::PeerAbort));
    l.assert_both_idle();
}
