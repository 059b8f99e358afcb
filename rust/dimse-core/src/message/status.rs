//! DIMSE status codes: the Status (0000,0900) command element of every response.
//!
//! PS3.7 Annex C defines the status *classes* (Success, Pending, Cancel, Warning, Failure),
//! how a 16-bit code maps onto them, and the general codes shared by all services (mostly
//! the 01xxH/02xxH failures of the DIMSE-N services). PS3.4 gives each service class its
//! own table on top of that, and the same code can mean different things in different
//! tables (0xB000 is "Coercion of Data Elements" for C-STORE but "Sub-operations Complete -
//! One or more Failures" for C-MOVE). So a name is only well defined together with a
//! [`Service`]; [`Status::name`] and [`Status::category_for`] take one, and the
//! service-independent [`Status::category`] / [`fmt::Display`] fall back to Annex C.

use std::fmt;

/// A DIMSE status value, (0000,0900).
///
/// Kept as a transparent `u16` rather than an enum: PS3.4 lets implementations pick any
/// code inside ranges such as A7xxH or Cxxx (PS3.4 B.2.3, C.4.1.1.4), and new service
/// classes keep adding codes, so every value received from a peer must round-trip.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct Status(pub u16);

/// The status class of a code (PS3.7 Annex C, C.1-C.5).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub enum StatusCategory {
    /// The operation completed as requested (PS3.7 C.1).
    Success,
    /// More responses follow for the same request (PS3.7 C.2).
    Pending,
    /// The operation was stopped by a C-CANCEL request (PS3.7 C.3).
    Cancel,
    /// The operation completed, but with a deviation (PS3.7 C.4).
    Warning,
    /// The operation failed and was not performed (PS3.7 C.5).
    Failure,
}

impl StatusCategory {
    /// The class name as PS3.7 Annex C spells it.
    pub const fn as_str(self) -> &'static str {
        match self {
            StatusCategory::Success => "Success",
            StatusCategory::Pending => "Pending",
            StatusCategory::Cancel => "Cancel",
            StatusCategory::Warning => "Warning",
            StatusCategory::Failure => "Failure",
        }
    }
}

impl fmt::Display for StatusCategory {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The DIMSE service (or service class) a status belongs to: the same code can mean
/// different things in different services (e.g. 0xA700 storage vs find).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub enum Service {
    /// C-ECHO (Verification, PS3.4 Annex A).
    Echo,
    /// C-STORE (Storage, PS3.4 Annex B).
    Store,
    /// C-FIND (Query/Retrieve and the other query services, PS3.4 C.4.1).
    Find,
    /// C-GET (PS3.4 C.4.3).
    Get,
    /// C-MOVE (PS3.4 C.4.2).
    Move,
    /// N-EVENT-REPORT (PS3.7 10.1.1).
    NEventReport,
    /// N-GET (PS3.7 10.1.2).
    NGet,
    /// N-SET (PS3.7 10.1.3).
    NSet,
    /// N-ACTION (PS3.7 10.1.4).
    NAction,
    /// N-CREATE (PS3.7 10.1.5).
    NCreate,
    /// N-DELETE (PS3.7 10.1.6).
    NDelete,
}

impl Service {
    /// Every service, in declaration order.
    pub const ALL: [Service; 11] = [
        Service::Echo,
        Service::Store,
        Service::Find,
        Service::Get,
        Service::Move,
        Service::NEventReport,
        Service::NGet,
        Service::NSet,
        Service::NAction,
        Service::NCreate,
        Service::NDelete,
    ];

    /// The DIMSE primitive name, e.g. "C-STORE".
    pub const fn as_str(self) -> &'static str {
        match self {
            Service::Echo => "C-ECHO",
            Service::Store => "C-STORE",
            Service::Find => "C-FIND",
            Service::Get => "C-GET",
            Service::Move => "C-MOVE",
            Service::NEventReport => "N-EVENT-REPORT",
            Service::NGet => "N-GET",
            Service::NSet => "N-SET",
            Service::NAction => "N-ACTION",
            Service::NCreate => "N-CREATE",
            Service::NDelete => "N-DELETE",
        }
    }

    /// Whether a request of this service may be answered by several responses, all but the
    /// last with a Pending status. Only C-FIND, C-GET and C-MOVE do (PS3.7 9.1.2-9.1.4);
    /// every other service has exactly one, final, response.
    pub const fn has_pending_responses(self) -> bool {
        matches!(self, Service::Find | Service::Get | Service::Move)
    }

    /// Whether a C-CANCEL request applies to this service, and so whether a Cancel status
    /// (FE00H) can legitimately answer it (PS3.7 9.3.2.3: C-FIND, C-GET and C-MOVE only).
    pub const fn is_cancellable(self) -> bool {
        matches!(self, Service::Find | Service::Get | Service::Move)
    }

    /// The PS3.4 status table of this service; codes not in it fall back to [`GENERAL`].
    fn table(self) -> &'static [Row] {
        match self {
            Service::Store => STORE,
            Service::Find => FIND,
            Service::Get => GET,
            Service::Move => MOVE,
            // C-ECHO (PS3.7 9.1.5) and the DIMSE-N services (PS3.7 10.1) use only the
            // general codes of PS3.7 Annex C; the service-class specific codes that the
            // N-services carry (print, UPS, ...) are per SOP class, not per primitive.
            Service::Echo
            | Service::NEventReport
            | Service::NGet
            | Service::NSet
            | Service::NAction
            | Service::NCreate
            | Service::NDelete => &[],
        }
    }
}

impl fmt::Display for Service {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Status {
    // --- Success, Pending, Cancel (PS3.7 C.1-C.3) ---

    /// 0000H: the operation completed as requested (PS3.7 C.1).
    pub const SUCCESS: Status = Status(0x0000);
    /// FF00H: more responses follow (PS3.7 C.2; PS3.4 C.4.1.1.4, C.4.2.1.5, C.4.3.1.4).
    pub const PENDING: Status = Status(0xFF00);
    /// FF01H: C-FIND match returned, but one or more Optional Keys were not supported for
    /// existence and/or matching (PS3.4 C.4.1.1.4).
    pub const PENDING_WARNING: Status = Status(0xFF01);
    /// FE00H: the operation was terminated by a C-CANCEL request (PS3.7 C.3).
    pub const CANCEL: Status = Status(0xFE00);

    // --- General warnings (PS3.7 C.4 and the DIMSE-N tables of PS3.4) ---

    /// 0001H: Requested optional Attributes are not supported (N-GET / N-SET tables of
    /// PS3.4, e.g. CC.2.6.4, CC.2.7.4).
    pub const REQUESTED_OPTIONAL_ATTRIBUTES_NOT_SUPPORTED: Status = Status(0x0001);
    /// 0107H: Attribute List Error (PS3.7 C.4.2).
    pub const ATTRIBUTE_LIST_ERROR: Status = Status(0x0107);
    /// 0116H: Attribute Value Out of Range (PS3.7 C.4.3).
    pub const ATTRIBUTE_VALUE_OUT_OF_RANGE: Status = Status(0x0116);

    // --- General failures (PS3.7 C.5) ---

    /// 0105H: No Such Attribute (PS3.7 C.5.17).
    pub const NO_SUCH_ATTRIBUTE: Status = Status(0x0105);
    /// 0106H: Invalid Attribute Value (PS3.7 C.5.11).
    pub const INVALID_ATTRIBUTE_VALUE: Status = Status(0x0106);
    /// 0110H: Processing Failure (PS3.7 C.5.21).
    pub const PROCESSING_FAILURE: Status = Status(0x0110);
    /// 0111H: Duplicate SOP Instance (PS3.7 C.5.8).
    pub const DUPLICATE_SOP_INSTANCE: Status = Status(0x0111);
    /// 0112H: No Such SOP Instance (PS3.7 C.5.19).
    pub const NO_SUCH_SOP_INSTANCE: Status = Status(0x0112);
    /// 0113H: No Such Event Type (PS3.7 C.5.18).
    pub const NO_SUCH_EVENT_TYPE: Status = Status(0x0113);
    /// 0114H: No Such Argument (PS3.7 C.5.16).
    pub const NO_SUCH_ARGUMENT: Status = Status(0x0114);
    /// 0115H: Invalid Argument Value (PS3.7 C.5.10).
    pub const INVALID_ARGUMENT_VALUE: Status = Status(0x0115);
    /// 0117H: Invalid Object Instance (PS3.7 C.5.12).
    pub const INVALID_OBJECT_INSTANCE: Status = Status(0x0117);
    /// 0118H: No Such SOP Class (PS3.7 C.5.20).
    pub const NO_SUCH_SOP_CLASS: Status = Status(0x0118);
    /// 0119H: Class-Instance Conflict (PS3.7 C.5.7).
    pub const CLASS_INSTANCE_CONFLICT: Status = Status(0x0119);
    /// 0120H: Missing Attribute (PS3.7 C.5.13).
    pub const MISSING_ATTRIBUTE: Status = Status(0x0120);
    /// 0121H: Missing Attribute Value (PS3.7 C.5.14).
    pub const MISSING_ATTRIBUTE_VALUE: Status = Status(0x0121);
    /// 0122H: Refused: SOP Class Not Supported (PS3.7 C.5.6).
    pub const SOP_CLASS_NOT_SUPPORTED: Status = Status(0x0122);
    /// 0123H: No Such Action (PS3.7 C.5.24).
    pub const NO_SUCH_ACTION: Status = Status(0x0123);
    /// 0124H: Refused: Not Authorized (PS3.7 C.5.25).
    pub const NOT_AUTHORIZED: Status = Status(0x0124);
    /// 0210H: Duplicate Invocation (PS3.7 C.5.9).
    pub const DUPLICATE_INVOCATION: Status = Status(0x0210);
    /// 0211H: Unrecognized Operation (PS3.7 C.5.23).
    pub const UNRECOGNIZED_OPERATION: Status = Status(0x0211);
    /// 0212H: Mistyped Argument (PS3.7 C.5.15).
    pub const MISTYPED_ARGUMENT: Status = Status(0x0212);
    /// 0213H: Resource Limitation (PS3.7 C.5.22).
    pub const RESOURCE_LIMITATION: Status = Status(0x0213);

    // --- Common service-class codes (PS3.7 C.5.1-C.5.5, PS3.4 B.2.3 and C.4) ---

    /// A700H: Refused: Out of Resources. Any A7xxH means this for C-STORE (PS3.4 B.2.3);
    /// C-FIND uses exactly A700H (PS3.4 C.4.1.1.4).
    pub const OUT_OF_RESOURCES: Status = Status(0xA700);
    /// A701H: Refused: Out of Resources - Unable to calculate number of matches
    /// (C-MOVE / C-GET, PS3.4 C.4.2.1.5, C.4.3.1.4).
    pub const OUT_OF_RESOURCES_NUMBER_OF_MATCHES: Status = Status(0xA701);
    /// A702H: Refused: Out of Resources - Unable to perform sub-operations
    /// (C-MOVE / C-GET, PS3.4 C.4.2.1.5, C.4.3.1.4).
    pub const OUT_OF_RESOURCES_SUB_OPERATIONS: Status = Status(0xA702);
    /// A801H: Refused: Move Destination unknown (PS3.7 C.5.4, PS3.4 C.4.2.1.5).
    pub const MOVE_DESTINATION_UNKNOWN: Status = Status(0xA801);
    /// A900H: Error: Data Set does not match SOP Class. Any A9xxH for C-STORE
    /// (PS3.4 B.2.3); exactly A900H, "Identifier does not match SOP Class", for C-FIND,
    /// C-MOVE and C-GET (PS3.4 C.4).
    pub const DATA_SET_DOES_NOT_MATCH_SOP_CLASS: Status = Status(0xA900);
    /// A900H under its C-FIND / C-MOVE / C-GET name (PS3.4 C.4.1.1.4).
    pub const IDENTIFIER_DOES_NOT_MATCH_SOP_CLASS: Status = Status(0xA900);
    /// C000H: the first code of the Cxxx range, "Error: Cannot understand" for C-STORE
    /// (PS3.4 B.2.3). Any code C000H-CFFFH carries that meaning.
    pub const CANNOT_UNDERSTAND: Status = Status(0xC000);
    /// C000H: the first code of the Cxxx range, "Unable to process" for C-FIND, C-MOVE
    /// and C-GET (PS3.4 C.4). Any code C000H-CFFFH carries that meaning.
    pub const UNABLE_TO_PROCESS: Status = Status(0xC000);
    /// B000H: Coercion of Data Elements (C-STORE warning, PS3.4 B.2.3).
    pub const COERCION_OF_DATA_ELEMENTS: Status = Status(0xB000);
    /// B000H: Sub-operations Complete - One or more Failures (C-MOVE / C-GET warning,
    /// PS3.4 C.4.2.1.5, C.4.3.1.4).
    pub const SUB_OPERATIONS_COMPLETE_WITH_FAILURES: Status = Status(0xB000);
    /// B006H: Elements Discarded (C-STORE warning, PS3.4 B.2.3).
    pub const ELEMENTS_DISCARDED: Status = Status(0xB006);
    /// B007H: Data Set does not match SOP Class (C-STORE *warning*, PS3.4 B.2.3; the
    /// failure with the same meaning is A9xxH).
    pub const DATA_SET_DOES_NOT_MATCH_SOP_CLASS_WARNING: Status = Status(0xB007);

    /// The raw code.
    pub const fn code(self) -> u16 {
        self.0
    }

    /// The service-independent status class, by the encoding rules of PS3.7 Annex C:
    /// 0000H success; FF00H/FF01H pending; FE00H cancel; 0001H, 0107H, 0116H and Bxxx
    /// warning; everything else (Axxx, Cxxx, the other 01xxH/02xxH, and codes the
    /// standard does not assign) failure. Unknown codes count as failures because a
    /// response that cannot be understood cannot be taken as the operation having worked.
    pub const fn category(self) -> StatusCategory {
        match self.0 {
            0x0000 => StatusCategory::Success,
            0xFF00 | 0xFF01 => StatusCategory::Pending,
            0xFE00 => StatusCategory::Cancel,
            0x0001 | 0x0107 | 0x0116 | 0xB000..=0xBFFF => StatusCategory::Warning,
            _ => StatusCategory::Failure,
        }
    }

    /// The status class of this code in a response of `service`.
    ///
    /// Codes in the service's PS3.4 table take the class that table gives them. Other
    /// codes take the Annex C class of [`Status::category`], except that Pending and Cancel
    /// are counted as Failure for services that have neither partial responses nor
    /// C-CANCEL (everything but C-FIND, C-GET, C-MOVE; PS3.7 9.1, 9.3.2.3): such a response
    /// is final whatever it says, and reading it as Pending would leave the requester
    /// waiting for responses that never come.
    pub fn category_for(self, service: Service) -> StatusCategory {
        if let Some(row) = lookup(service.table(), self.0) {
            return row.category;
        }
        match self.category() {
            StatusCategory::Pending if !service.has_pending_responses() => StatusCategory::Failure,
            StatusCategory::Cancel if !service.is_cancellable() => StatusCategory::Failure,
            category => category,
        }
    }

    /// Whether this is 0000H (PS3.7 C.1).
    pub const fn is_success(self) -> bool {
        matches!(self.category(), StatusCategory::Success)
    }

    /// Whether this is FF00H or FF01H (PS3.7 C.2).
    pub const fn is_pending(self) -> bool {
        matches!(self.category(), StatusCategory::Pending)
    }

    /// Whether this is FE00H (PS3.7 C.3).
    pub const fn is_cancel(self) -> bool {
        matches!(self.category(), StatusCategory::Cancel)
    }

    /// Whether this is a warning by PS3.7 Annex C (0001H, 0107H, 0116H, Bxxx).
    pub const fn is_warning(self) -> bool {
        matches!(self.category(), StatusCategory::Warning)
    }

    /// Whether this is a failure by PS3.7 Annex C (including unassigned codes).
    pub const fn is_failure(self) -> bool {
        matches!(self.category(), StatusCategory::Failure)
    }

    /// The standard's name for this code in this service, e.g. "Refused: Out of Resources".
    ///
    /// With a service, its PS3.4 table is searched first and the general codes of PS3.7
    /// Annex C second; without one, only the general codes are. An exact code wins over a
    /// range that contains it: in C-MOVE, A701H has its own name while the rest of A7xxH
    /// falls back to the general "Refused: Out of Resources". Codes whose meaning depends
    /// on the service and that have no general meaning (e.g. B000H) are `None` without a
    /// service.
    pub fn name(self, service: Option<Service>) -> Option<&'static str> {
        service
            .and_then(|s| lookup(s.table(), self.0))
            .or_else(|| lookup(GENERAL, self.0))
            .map(|row| row.name)
    }

    /// A [`fmt::Display`] adapter that names the code as `service` defines it, e.g.
    /// `0xB000 (Coercion of Data Elements)` for C-STORE.
    pub const fn display_for(self, service: Service) -> StatusDisplay {
        StatusDisplay {
            status: self,
            service: Some(service),
        }
    }
}

impl From<u16> for Status {
    fn from(code: u16) -> Self {
        Status(code)
    }
}

impl From<Status> for u16 {
    fn from(status: Status) -> Self {
        status.0
    }
}

/// `0xA700 (Refused: Out of Resources)`, or just `0x1234` when the code has no
/// service-independent name.
impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        StatusDisplay {
            status: *self,
            service: None,
        }
        .fmt(f)
    }
}

/// Formats a [`Status`] with the name a given service gives it; see
/// [`Status::display_for`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StatusDisplay {
    status: Status,
    service: Option<Service>,
}

impl fmt::Display for StatusDisplay {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "0x{:04X}", self.status.0)?;
        match self.status.name(self.service) {
            Some(name) => write!(f, " ({name})"),
            None => Ok(()),
        }
    }
}

/// One row of a status table: every code in `lo..=hi` has this meaning and class.
/// Exact codes are rows with `lo == hi`.
struct Row {
    lo: u16,
    hi: u16,
    category: StatusCategory,
    name: &'static str,
}

const fn exact(code: u16, category: StatusCategory, name: &'static str) -> Row {
    Row {
        lo: code,
        hi: code,
        category,
        name,
    }
}

const fn range(lo: u16, hi: u16, category: StatusCategory, name: &'static str) -> Row {
    Row {
        lo,
        hi,
        category,
        name,
    }
}

/// The narrowest row of `table` containing `code`, so that an exact code is preferred
/// over a range holding it, and a small range over a larger one.
fn lookup(table: &[Row], code: u16) -> Option<&Row> {
    table
        .iter()
        .filter(|row| row.lo <= code && code <= row.hi)
        .min_by_key(|row| row.hi - row.lo)
}

use StatusCategory::{Cancel, Failure, Pending, Success, Warning};

/// Codes whose meaning does not depend on the service: PS3.7 Annex C, plus the few codes
/// that PS3.4 uses with one meaning in every table that has them.
static GENERAL: &[Row] = &[
    // PS3.7 C.1-C.3: the classes whose code is fixed.
    exact(0x0000, Success, "Success"),
    exact(0xFF00, Pending, "Pending"),
    // FF01H is defined only by the C-FIND tables (PS3.4 C.4.1.1.4 and the query services
    // modelled on it), so its C-FIND meaning is its meaning everywhere.
    exact(
        0xFF01,
        Pending,
        "Pending: Warning that one or more Optional Keys were not supported",
    ),
    exact(0xFE00, Cancel, "Cancel"),
    // PS3.4 N-GET / N-SET tables (e.g. CC.2.6.4, CC.2.7.4).
    exact(
        0x0001,
        Warning,
        "Requested optional Attributes are not supported",
    ),
    // PS3.7 C.4.2, C.4.3.
    exact(0x0107, Warning, "Attribute List Error"),
    exact(0x0116, Warning, "Attribute Value Out of Range"),
    // PS3.7 C.5.6-C.5.25: the fixed failure codes.
    exact(0x0105, Failure, "No Such Attribute"),
    exact(0x0106, Failure, "Invalid Attribute Value"),
    exact(0x0110, Failure, "Processing Failure"),
    exact(0x0111, Failure, "Duplicate SOP Instance"),
    exact(0x0112, Failure, "No Such SOP Instance"),
    exact(0x0113, Failure, "No Such Event Type"),
    exact(0x0114, Failure, "No Such Argument"),
    exact(0x0115, Failure, "Invalid Argument Value"),
    exact(0x0117, Failure, "Invalid Object Instance"),
    exact(0x0118, Failure, "No Such SOP Class"),
    exact(0x0119, Failure, "Class-Instance Conflict"),
    exact(0x0120, Failure, "Missing Attribute"),
    exact(0x0121, Failure, "Missing Attribute Value"),
    exact(0x0122, Failure, "Refused: SOP Class Not Supported"),
    exact(0x0123, Failure, "No Such Action"),
    exact(0x0124, Failure, "Refused: Not Authorized"),
    exact(0x0210, Failure, "Duplicate Invocation"),
    exact(0x0211, Failure, "Unrecognized Operation"),
    exact(0x0212, Failure, "Mistyped Argument"),
    exact(0x0213, Failure, "Resource Limitation"),
    // PS3.7 C.5.1-C.5.5: failure classes whose code PS3.4 assigns per service. The ranges
    // are the ones every PS3.4 table that uses these meanings keeps them in.
    exact(0xA801, Failure, "Refused: Move Destination unknown"),
    range(0xA700, 0xA7FF, Failure, "Refused: Out of Resources"),
    range(
        0xA900,
        0xA9FF,
        Failure,
        "Error: Data Set does not match SOP Class",
    ),
    range(0xC000, 0xCFFF, Failure, "Error: Cannot understand"),
];

/// C-STORE, PS3.4 B.2.3 Table B.2-1.
static STORE: &[Row] = &[
    exact(0x0000, Success, "Success"),
    range(0xA700, 0xA7FF, Failure, "Refused: Out of Resources"),
    range(
        0xA900,
        0xA9FF,
        Failure,
        "Error: Data Set does not match SOP Class",
    ),
    range(0xC000, 0xCFFF, Failure, "Error: Cannot understand"),
    exact(0xB000, Warning, "Coercion of Data Elements"),
    exact(0xB006, Warning, "Elements Discarded"),
    exact(0xB007, Warning, "Data Set does not match SOP Class"),
];

/// C-FIND, PS3.4 C.4.1.1.4 Table C.4-1.
static FIND: &[Row] = &[
    exact(0xA700, Failure, "Refused: Out of Resources"),
    exact(0xA900, Failure, "Identifier does not match SOP Class"),
    range(0xC000, 0xCFFF, Failure, "Unable to process"),
    exact(0xFE00, Cancel, "Matching terminated due to Cancel request"),
    exact(
        0x0000,
        Success,
        "Matching is complete - No final Identifier is supplied",
    ),
    exact(
        0xFF00,
        Pending,
        "Matches are continuing - Current Match is supplied and any Optional Keys were \
         supported in the same manner as Required Keys",
    ),
    exact(
        0xFF01,
        Pending,
        "Matches are continuing - Warning that one or more Optional Keys were not \
         supported for existence and/or matching for this Identifier",
    ),
];

/// C-MOVE, PS3.4 C.4.2.1.5 Table C.4-2.
static MOVE: &[Row] = &[
    exact(
        0xA701,
        Failure,
        "Refused: Out of Resources - Unable to calculate number of matches",
    ),
    exact(
        0xA702,
        Failure,
        "Refused: Out of Resources - Unable to perform sub-operations",
    ),
    exact(0xA801, Failure, "Refused: Move Destination unknown"),
    exact(0xA900, Failure, "Identifier does not match SOP Class"),
    range(0xC000, 0xCFFF, Failure, "Unable to process"),
    exact(
        0xFE00,
        Cancel,
        "Sub-operations terminated due to Cancel Indication",
    ),
    exact(
        0xB000,
        Warning,
        "Sub-operations Complete - One or more Failures",
    ),
    exact(0x0000, Success, "Sub-operations Complete - No Failures"),
    exact(0xFF00, Pending, "Sub-operations are continuing"),
];

/// C-GET, PS3.4 C.4.3.1.4 Table C.4-3. As C-MOVE without a move destination; the C-GET
/// table counts warning sub-operations in B000H too.
static GET: &[Row] = &[
    exact(
        0xA701,
        Failure,
        "Refused: Out of Resources - Unable to calculate number of matches",
    ),
    exact(
        0xA702,
        Failure,
        "Refused: Out of Resources - Unable to perform sub-operations",
    ),
    exact(0xA900, Failure, "Identifier does not match SOP Class"),
    range(0xC000, 0xCFFF, Failure, "Unable to process"),
    exact(
        0xFE00,
        Cancel,
        "Sub-operations terminated due to Cancel Indication",
    ),
    exact(
        0xB000,
        Warning,
        "Sub-operations Complete - One or more Failures or Warnings",
    ),
    exact(0x0000, Success, "Sub-operations Complete - No Failures"),
    exact(0xFF00, Pending, "Sub-operations are continuing"),
];

/// A response built without a status says success: the common case, and what a typed
/// response's `Default` starts from.
impl Default for Status {
    fn default() -> Self {
        Status::SUCCESS
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cat(code: u16) -> StatusCategory {
        Status(code).category()
    }

    #[test]
    fn category_boundaries() {
        // Success is exactly 0000H.
        assert_eq!(cat(0x0000), Success);
        // 0001H is a warning, 0002H is not.
        assert_eq!(cat(0x0001), Warning);
        assert_eq!(cat(0x0002), Failure);
        // 0107H and 0116H are the only 01xxH warnings; their neighbours fail.
        assert_eq!(cat(0x0106), Failure);
        assert_eq!(cat(0x0107), Warning);
        assert_eq!(cat(0x0108), Failure);
        assert_eq!(cat(0x0115), Failure);
        assert_eq!(cat(0x0116), Warning);
        assert_eq!(cat(0x0117), Failure);
        assert_eq!(cat(0x0100), Failure);
        assert_eq!(cat(0x01FF), Failure);
        assert_eq!(cat(0x0200), Failure);
        assert_eq!(cat(0x02FF), Failure);
        // Bxxx is warning, its neighbours Axxx and Cxxx fail.
        assert_eq!(cat(0xA000), Failure);
        assert_eq!(cat(0xAFFF), Failure);
        assert_eq!(cat(0xB000), Warning);
        assert_eq!(cat(0xBFFF), Warning);
        assert_eq!(cat(0xC000), Failure);
        assert_eq!(cat(0xCFFF), Failure);
        // Cancel is exactly FE00H.
        assert_eq!(cat(0xFDFF), Failure);
        assert_eq!(cat(0xFE00), Cancel);
        assert_eq!(cat(0xFE01), Failure);
        assert_eq!(cat(0xFEFF), Failure);
        // Pending is exactly FF00H and FF01H.
        assert_eq!(cat(0xFF00), Pending);
        assert_eq!(cat(0xFF01), Pending);
        assert_eq!(cat(0xFF02), Failure);
        assert_eq!(cat(0xFFFF), Failure);
        // Unassigned codes fail.
        assert_eq!(cat(0x1234), Failure);
        assert_eq!(cat(0x8000), Failure);
    }

    #[test]
    fn predicates_match_category() {
        assert!(Status::SUCCESS.is_success());
        assert!(!Status::SUCCESS.is_failure());
        assert!(Status::PENDING.is_pending());
        assert!(Status::PENDING_WARNING.is_pending());
        assert!(!Status::PENDING_WARNING.is_warning());
        assert!(Status::CANCEL.is_cancel());
        assert!(!Status::CANCEL.is_failure());
        assert!(Status::ATTRIBUTE_LIST_ERROR.is_warning());
        assert!(Status::ATTRIBUTE_VALUE_OUT_OF_RANGE.is_warning());
        assert!(Status::COERCION_OF_DATA_ELEMENTS.is_warning());
        assert!(Status::OUT_OF_RESOURCES.is_failure());
        assert!(!Status::OUT_OF_RESOURCES.is_warning());
        assert!(Status(0x1234).is_failure());
        // Exactly one predicate holds for every code.
        for code in 0..=u16::MAX {
            let s = Status(code);
            let n = [
                s.is_success(),
                s.is_pending(),
                s.is_cancel(),
                s.is_warning(),
                s.is_failure(),
            ]
            .iter()
            .filter(|&&b| b)
            .count();
            assert_eq!(n, 1, "code {code:#06X}");
        }
    }

    #[test]
    fn constant_values() {
        assert_eq!(Status::PROCESSING_FAILURE.0, 0x0110);
        assert_eq!(Status::SOP_CLASS_NOT_SUPPORTED.0, 0x0122);
        assert_eq!(Status::NO_SUCH_SOP_CLASS.0, 0x0118);
        assert_eq!(Status::DUPLICATE_SOP_INSTANCE.0, 0x0111);
        assert_eq!(Status::NO_SUCH_SOP_INSTANCE.0, 0x0112);
        assert_eq!(Status::NOT_AUTHORIZED.0, 0x0124);
        assert_eq!(Status::DUPLICATE_INVOCATION.0, 0x0210);
        assert_eq!(Status::UNRECOGNIZED_OPERATION.0, 0x0211);
        assert_eq!(Status::MISTYPED_ARGUMENT.0, 0x0212);
        assert_eq!(Status::RESOURCE_LIMITATION.0, 0x0213);
        assert_eq!(Status::ATTRIBUTE_LIST_ERROR.0, 0x0107);
        assert_eq!(Status::ATTRIBUTE_VALUE_OUT_OF_RANGE.0, 0x0116);
        assert_eq!(Status::OUT_OF_RESOURCES.0, 0xA700);
        assert_eq!(Status::MOVE_DESTINATION_UNKNOWN.0, 0xA801);
        assert_eq!(Status::SUB_OPERATIONS_COMPLETE_WITH_FAILURES.0, 0xB000);
        assert_eq!(u16::from(Status::CANCEL), 0xFE00);
        assert_eq!(Status::from(0xFF01), Status::PENDING_WARNING);
        assert_eq!(Status(0xC123).code(), 0xC123);
    }

    #[test]
    fn general_names() {
        let cases: &[(Status, &str)] = &[
            (Status::SUCCESS, "Success"),
            (Status::PENDING, "Pending"),
            (Status::CANCEL, "Cancel"),
            (Status::ATTRIBUTE_LIST_ERROR, "Attribute List Error"),
            (
                Status::ATTRIBUTE_VALUE_OUT_OF_RANGE,
                "Attribute Value Out of Range",
            ),
            (Status::NO_SUCH_ATTRIBUTE, "No Such Attribute"),
            (Status::INVALID_ATTRIBUTE_VALUE, "Invalid Attribute Value"),
            (Status::PROCESSING_FAILURE, "Processing Failure"),
            (Status::DUPLICATE_SOP_INSTANCE, "Duplicate SOP Instance"),
            (Status::NO_SUCH_SOP_INSTANCE, "No Such SOP Instance"),
            (Status::NO_SUCH_EVENT_TYPE, "No Such Event Type"),
            (Status::NO_SUCH_ARGUMENT, "No Such Argument"),
            (Status::INVALID_ARGUMENT_VALUE, "Invalid Argument Value"),
            (Status::INVALID_OBJECT_INSTANCE, "Invalid Object Instance"),
            (Status::NO_SUCH_SOP_CLASS, "No Such SOP Class"),
            (Status::CLASS_INSTANCE_CONFLICT, "Class-Instance Conflict"),
            (Status::MISSING_ATTRIBUTE, "Missing Attribute"),
            (Status::MISSING_ATTRIBUTE_VALUE, "Missing Attribute Value"),
            (
                Status::SOP_CLASS_NOT_SUPPORTED,
                "Refused: SOP Class Not Supported",
            ),
            (Status::NO_SUCH_ACTION, "No Such Action"),
            (Status::NOT_AUTHORIZED, "Refused: Not Authorized"),
            (Status::DUPLICATE_INVOCATION, "Duplicate Invocation"),
            (Status::UNRECOGNIZED_OPERATION, "Unrecognized Operation"),
            (Status::MISTYPED_ARGUMENT, "Mistyped Argument"),
            (Status::RESOURCE_LIMITATION, "Resource Limitation"),
            (
                Status::MOVE_DESTINATION_UNKNOWN,
                "Refused: Move Destination unknown",
            ),
            (Status::OUT_OF_RESOURCES, "Refused: Out of Resources"),
        ];
        for &(status, name) in cases {
            assert_eq!(status.name(None), Some(name), "{:#06X}", status.0);
        }
        // Unassigned codes, and codes whose meaning only a service defines, have no
        // service-independent name.
        assert_eq!(Status(0x1234).name(None), None);
        assert_eq!(Status(0x0104).name(None), None);
        assert_eq!(Status::COERCION_OF_DATA_ELEMENTS.name(None), None);
        assert_eq!(Status(0xB006).name(None), None);
    }

    #[test]
    fn service_specific_names() {
        // The same code, three meanings.
        let b000 = Status(0xB000);
        assert_eq!(
            b000.name(Some(Service::Store)),
            Some("Coercion of Data Elements")
        );
        assert_eq!(
            b000.name(Some(Service::Move)),
            Some("Sub-operations Complete - One or more Failures")
        );
        assert_eq!(
            b000.name(Some(Service::Get)),
            Some("Sub-operations Complete - One or more Failures or Warnings")
        );
        assert_eq!(b000.name(Some(Service::Echo)), None);

        assert_eq!(
            Status(0xB007).name(Some(Service::Store)),
            Some("Data Set does not match SOP Class")
        );
        assert_eq!(
            Status(0xB006).name(Some(Service::Store)),
            Some("Elements Discarded")
        );
        assert_eq!(
            Status(0xA900).name(Some(Service::Find)),
            Some("Identifier does not match SOP Class")
        );
        assert_eq!(
            Status(0xA900).name(Some(Service::Store)),
            Some("Error: Data Set does not match SOP Class")
        );
        assert_eq!(
            Status::CANCEL.name(Some(Service::Find)),
            Some("Matching terminated due to Cancel request")
        );
        assert_eq!(
            Status::CANCEL.name(Some(Service::Move)),
            Some("Sub-operations terminated due to Cancel Indication")
        );
        assert_eq!(
            Status::SUCCESS.name(Some(Service::Get)),
            Some("Sub-operations Complete - No Failures")
        );
        assert_eq!(
            Status::PENDING.name(Some(Service::Move)),
            Some("Sub-operations are continuing")
        );
        assert!(Status::PENDING_WARNING
            .name(Some(Service::Find))
            .is_some_and(|n| n.contains("Optional Keys were not supported")));
        assert_eq!(
            Status(0xA801).name(Some(Service::Move)),
            Some("Refused: Move Destination unknown")
        );
        // Codes absent from a service table fall back to the general meaning.
        assert_eq!(
            Status::SOP_CLASS_NOT_SUPPORTED.name(Some(Service::Find)),
            Some("Refused: SOP Class Not Supported")
        );
        assert_eq!(
            Status::NO_SUCH_ACTION.name(Some(Service::NAction)),
            Some("No Such Action")
        );
        assert_eq!(Status::SUCCESS.name(Some(Service::Echo)), Some("Success"));
    }

    #[test]
    fn range_matching() {
        // Every code of a C-STORE range carries the range's name.
        for code in [0xA700, 0xA701, 0xA7FF] {
            assert_eq!(
                Status(code).name(Some(Service::Store)),
                Some("Refused: Out of Resources"),
                "{code:#06X}"
            );
        }
        assert_eq!(
            Status(0xA9FF).name(Some(Service::Store)),
            Some("Error: Data Set does not match SOP Class")
        );
        // Just outside the ranges: nothing.
        assert_eq!(Status(0xA6FF).name(Some(Service::Store)), None);
        assert_eq!(Status(0xA800).name(Some(Service::Store)), None);
        assert_eq!(Status(0xD000).name(Some(Service::Store)), None);
        assert_eq!(Status(0xBFFF).name(Some(Service::Store)), None);
        // Cxxx: one range, a different name per service.
        for code in [0xC000, 0xC123, 0xCFFF] {
            let s = Status(code);
            assert_eq!(
                s.name(Some(Service::Store)),
                Some("Error: Cannot understand")
            );
            assert_eq!(s.name(Some(Service::Find)), Some("Unable to process"));
            assert_eq!(s.name(Some(Service::Move)), Some("Unable to process"));
            assert_eq!(s.name(None), Some("Error: Cannot understand"));
        }
        // The exact code wins over a range that contains it.
        assert_eq!(
            Status(0xA701).name(Some(Service::Move)),
            Some("Refused: Out of Resources - Unable to calculate number of matches")
        );
        assert_eq!(
            Status(0xA702).name(Some(Service::Get)),
            Some("Refused: Out of Resources - Unable to perform sub-operations")
        );
        // ... and the range still covers the rest.
        assert_eq!(
            Status(0xA703).name(Some(Service::Move)),
            Some("Refused: Out of Resources")
        );
        assert_eq!(Status(0xA7FF).name(None), Some("Refused: Out of Resources"));
    }

    #[test]
    fn lookup_prefers_the_narrowest_row() {
        // The shipped tables keep exact codes and ranges apart within one table, so check
        // the tie-break on a table built for it, in both row orders.
        let wide_first = [
            range(0xA000, 0xAFFF, Failure, "wide"),
            range(0xA700, 0xA7FF, Failure, "range"),
            exact(0xA701, Failure, "exact"),
        ];
        let exact_first = [
            exact(0xA701, Failure, "exact"),
            range(0xA700, 0xA7FF, Failure, "range"),
            range(0xA000, 0xAFFF, Failure, "wide"),
        ];
        for table in [&wide_first[..], &exact_first[..]] {
            let name = |code| lookup(table, code).map(|row| row.name);
            assert_eq!(name(0xA701), Some("exact"));
            assert_eq!(name(0xA700), Some("range"));
            assert_eq!(name(0xA7FF), Some("range"));
            assert_eq!(name(0xA800), Some("wide"));
            assert_eq!(name(0xB000), None);
        }
    }

    #[test]
    fn category_per_service() {
        // B000H is a warning in C-STORE, C-GET and C-MOVE.
        for service in [Service::Store, Service::Get, Service::Move] {
            assert_eq!(Status(0xB000).category_for(service), Warning);
        }
        assert_eq!(Status(0xB007).category_for(Service::Store), Warning);
        assert_eq!(Status(0xC5A5).category_for(Service::Find), Failure);
        assert_eq!(Status(0xA7FF).category_for(Service::Store), Failure);
        // Pending and Cancel exist only where partial responses and C-CANCEL do.
        for service in [Service::Find, Service::Get, Service::Move] {
            assert_eq!(Status::PENDING.category_for(service), Pending);
            assert_eq!(Status::PENDING_WARNING.category_for(service), Pending);
            assert_eq!(Status::CANCEL.category_for(service), Cancel);
        }
        for service in [
            Service::Echo,
            Service::Store,
            Service::NEventReport,
            Service::NGet,
            Service::NSet,
            Service::NAction,
            Service::NCreate,
            Service::NDelete,
        ] {
            assert_eq!(Status::PENDING.category_for(service), Failure, "{service}");
            assert_eq!(Status::CANCEL.category_for(service), Failure, "{service}");
            assert_eq!(Status::SUCCESS.category_for(service), Success, "{service}");
            assert_eq!(
                Status::ATTRIBUTE_LIST_ERROR.category_for(service),
                Warning,
                "{service}"
            );
        }
        assert_eq!(
            Status::REQUESTED_OPTIONAL_ATTRIBUTES_NOT_SUPPORTED.category_for(Service::NGet),
            Warning
        );
        assert_eq!(Status(0x1234).category_for(Service::Find), Failure);
    }

    #[test]
    fn tables_agree_with_annex_c() {
        // Every row's class must be the Annex C class of every code it covers: PS3.4
        // assigns its codes within the Annex C encoding, so a mismatch is a typo here.
        let tables: [(&str, &[Row]); 5] = [
            ("general", GENERAL),
            ("store", STORE),
            ("find", FIND),
            ("move", MOVE),
            ("get", GET),
        ];
        for (label, table) in tables {
            for row in table {
                assert!(row.lo <= row.hi, "{label} {:#06X}", row.lo);
                for code in row.lo..=row.hi {
                    assert_eq!(
                        Status(code).category(),
                        row.category,
                        "{label} {code:#06X} ({})",
                        row.name
                    );
                }
            }
        }
    }

    #[test]
    fn tables_have_no_duplicate_exact_codes() {
        // Two rows of equal width containing the same code would make the lookup depend
        // on row order.
        for table in [GENERAL, STORE, FIND, MOVE, GET] {
            for (i, a) in table.iter().enumerate() {
                for b in &table[i + 1..] {
                    let overlap = a.lo <= b.hi && b.lo <= a.hi;
                    assert!(
                        !(overlap && a.hi - a.lo == b.hi - b.lo),
                        "{:#06X} / {:#06X}",
                        a.lo,
                        b.lo
                    );
                }
            }
        }
    }

    #[test]
    fn display() {
        assert_eq!(
            Status(0xA700).to_string(),
            "0xA700 (Refused: Out of Resources)"
        );
        assert_eq!(Status(0x1234).to_string(), "0x1234");
        assert_eq!(Status(0x0000).to_string(), "0x0000 (Success)");
        assert_eq!(Status(0x0110).to_string(), "0x0110 (Processing Failure)");
        assert_eq!(
            Status(0xc001).to_string(),
            "0xC001 (Error: Cannot understand)"
        );
        assert_eq!(Status(0xB000).to_string(), "0xB000");
        assert_eq!(
            Status(0xB000).display_for(Service::Store).to_string(),
            "0xB000 (Coercion of Data Elements)"
        );
        assert_eq!(
            Status(0xC001).display_for(Service::Find).to_string(),
            "0xC001 (Unable to process)"
        );
        assert_eq!(
            Status(0xBEEF).display_for(Service::Store).to_string(),
            "0xBEEF"
        );
        assert_eq!(Service::NEventReport.to_string(), "N-EVENT-REPORT");
        assert_eq!(StatusCategory::Warning.to_string(), "Warning");
    }

    #[test]
    fn service_capabilities() {
        let pending: Vec<Service> = Service::ALL
            .into_iter()
            .filter(|s| s.has_pending_responses())
            .collect();
        assert_eq!(pending, [Service::Find, Service::Get, Service::Move]);
        let cancellable: Vec<Service> = Service::ALL
            .into_iter()
            .filter(|s| s.is_cancellable())
            .collect();
        assert_eq!(cancellable, [Service::Find, Service::Get, Service::Move]);
    }
}
