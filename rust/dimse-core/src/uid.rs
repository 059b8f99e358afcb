//! UIDs this implementation needs to know.

/// Our Implementation Class UID (PS3.7 D.3.3.2): a 2.25 UID (PS3.5 B.2) derived from a
/// UUID generated once for dimse and fixed here, so every release identifies as dimse.
pub const IMPLEMENTATION_CLASS_UID: &str = "2.25.260012574915930377781602876014901607885";

/// Our Implementation Version Name (PS3.7 D.3.3.2): `DIMSE_<version>`, at most 16 chars.
pub const IMPLEMENTATION_VERSION_NAME: &str = concat!("DIMSE_", env!("CARGO_PKG_VERSION"));

/// The DICOM Application Context Name (PS3.7 A.2.1).
pub const APPLICATION_CONTEXT_NAME: &str = crate::pdu::APPLICATION_CONTEXT_NAME;

/// Verification SOP Class (PS3.4 A.4).
pub const VERIFICATION: &str = "1.2.840.10008.1.1";
/// Implicit VR Little Endian: Default Transfer Syntax for DICOM (PS3.5 10.1).
pub const IMPLICIT_VR_LITTLE_ENDIAN: &str = "1.2.840.10008.1.2";
/// Explicit VR Little Endian (PS3.5 A.2).
pub const EXPLICIT_VR_LITTLE_ENDIAN: &str = "1.2.840.10008.1.2.1";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn implementation_identity_is_valid() {
        assert!(IMPLEMENTATION_CLASS_UID.len() <= 64);
        assert!(IMPLEMENTATION_CLASS_UID
            .bytes()
            .all(|b| b.is_ascii_digit() || b == b'.'));
        // 2.25 UIDs carry a decimal 128-bit integer without leading zeros (PS3.5 B.2).
        let n: u128 = IMPLEMENTATION_CLASS_UID[5..].parse().unwrap();
        assert!(n > 0 && !IMPLEMENTATION_CLASS_UID[5..].starts_with('0'));
        assert!(IMPLEMENTATION_VERSION_NAME.len() <= 16);
        assert!(IMPLEMENTATION_VERSION_NAME.starts_with("DIMSE_"));
    }
}
