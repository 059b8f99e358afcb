//! The File Meta Information reader (PS3.10 7.1) and the data set walker that names a
//! received instance's folders (`storage::scan`): both read bytes a peer (or a file from
//! anywhere) controls.
//!
//! Byte 0 picks the target: even, `filemeta::parse` of the rest; odd, the walker over the
//! rest in the encoding named by bits 1-2, asking for the Study and Series Instance UIDs.
//!
//! Properties checked besides "no panic":
//! - a header that parses has its data offset inside the input, and its File Meta
//!   Information (when complete) re-encodes and parses again to equal fields;
//! - the walker returns one value per tag asked, each a slice no longer than the input;
//! - `storage::component` of whatever UID bytes were found is a safe file name: not empty,
//!   no separator, not `.` or `..`.
#![no_main]

use dimse_core::filemeta;
use dimse_core::storage::{self, scan};
use libfuzzer_sys::fuzz_target;

const STUDY: u32 = 0x0020_000D;
const SERIES: u32 = 0x0020_000E;

fn check_component(value: &[u8]) {
    let name = storage::component(&String::from_utf8_lossy(value));
    assert!(!name.is_empty());
    assert!(!name.contains('/') && !name.contains('\\') && !name.contains('\0'));
    assert!(name != "." && name != "..", "{name:?}");
}

fuzz_target!(|data: &[u8]| {
    let [selector, rest @ ..] = data else {
        return;
    };
    if selector % 2 == 0 {
        if let Ok(header) = filemeta::parse(rest) {
            assert!(header.data_offset as usize <= rest.len());
            if let Ok(encoded) = header.meta.encode() {
                let again = filemeta::parse(&encoded).expect("our own header parses");
                assert_eq!(
                    again.meta.media_storage_sop_instance_uid,
                    header.meta.media_storage_sop_instance_uid
                );
                assert_eq!(
                    again.meta.transfer_syntax_uid,
                    header.meta.transfer_syntax_uid
                );
                assert_eq!(again.data_offset as usize, encoded.len());
            }
        }
    } else {
        let encoding = match (selector >> 1) % 4 {
            0 => scan::Encoding::ImplicitLittle,
            1 => scan::Encoding::ExplicitLittle,
            2 => scan::Encoding::ExplicitBig,
            _ => scan::Encoding::Deflated,
        };
        let found = scan::find_elements(rest, encoding, &[STUDY, SERIES]);
        assert_eq!(found.len(), 2);
        for value in found.into_iter().flatten() {
            if encoding != scan::Encoding::Deflated {
                assert!(value.len() <= rest.len());
            }
            check_component(&value);
        }
        check_component(rest);
    }
});
