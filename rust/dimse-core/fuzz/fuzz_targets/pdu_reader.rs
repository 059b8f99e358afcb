//! PDU decoding from a byte stream cut at arbitrary points.
//!
//! Input layout (so that libFuzzer mutates the chunking along with the bytes):
//! - byte 0: the reader's limits (bits 0-1: P-DATA-TF maximum, bits 2-3: A-ASSOCIATE
//!   maximum), so that the "too long" paths are reached with small inputs;
//! - byte 1: how many chunk-size bytes follow (1 to 8);
//! - the chunk sizes (each byte + 1, used in turn, cyclically);
//! - the rest: the stream a peer sends.
//!
//! Properties checked:
//! - no panic, whatever the bytes and however they are cut;
//! - the chunking does not matter: the PDUs (and the first error) read from the chunked
//!   stream are those read from the whole stream at once;
//! - `Ok(None)` leaves the buffer untouched;
//! - `PduReader::decode` of exactly the bytes `read` consumed gives the same PDU;
//! - every decoded PDU encodes, and its encoding decodes to an equal PDU (a P-DATA-TF's
//!   body re-encodes byte for byte: PDVs are kept as received).
#![no_main]

use bytes::{Bytes, BytesMut};
use dimse_core::pdu::{self, Pdu, PduError, PduReader, DEFAULT_MAX_ASSOCIATE_LENGTH};
use libfuzzer_sys::fuzz_target;

fn reader(config: u8) -> PduReader {
    // 0 (= unlimited) and 16 reach both sides of the P-DATA-TF limit check with tiny inputs.
    let max_pdu_length = [0, 16, 1024, 16 * 1024][usize::from(config & 3)];
    let max_associate_length =
        [DEFAULT_MAX_ASSOCIATE_LENGTH, 68, 256, 4096][usize::from((config >> 2) & 3)];
    PduReader {
        max_pdu_length,
        max_associate_length,
    }
}

/// Reads every complete PDU out of `buf`, stopping at the first error (a driver aborts
/// the association there and reads nothing more).
fn drain(reader: &PduReader, buf: &mut BytesMut, out: &mut Vec<Result<Pdu, PduError>>) -> bool {
    loop {
        // Where the bytes are and how many: comparing these (rather than a copy of the
        // buffer, quadratic with one-byte chunks) is enough to see a consumed prefix.
        let before = (buf.as_ptr(), buf.len());
        match reader.read(buf) {
            Ok(Some(pdu)) => out.push(Ok(pdu)),
            Ok(None) => {
                assert_eq!(
                    (buf.as_ptr(), buf.len()),
                    before,
                    "Ok(None) must not consume anything"
                );
                return true;
            }
            Err(e) => {
                out.push(Err(e));
                return false;
            }
        }
    }
}

fn check_round_trip(pdu: &Pdu) {
    let encoded = pdu.encode().expect("a decoded PDU must encode");
    // Lenient decoding (replacement characters for bad UTF-8) can make an encoding longer
    // than its source, so the re-decode is not bound by the small fuzzing limits.
    let permissive = PduReader {
        max_pdu_length: u32::MAX,
        max_associate_length: u32::MAX,
    };
    let again = permissive
        .decode(Bytes::from(encoded))
        .expect("an encoded PDU must decode");
    assert_eq!(&again, pdu, "decode(encode(pdu)) != pdu");
}

fuzz_target!(|data: &[u8]| {
    let [config, n, rest @ ..] = data else {
        return;
    };
    let n = usize::from(n % 8) + 1;
    if rest.len() < n {
        return;
    }
    let (sizes, stream) = rest.split_at(n);
    let reader = reader(*config);

    // The whole stream at once, remembering which bytes each PDU came from.
    let mut whole = Vec::new();
    let mut buf = BytesMut::from(stream);
    drain(&reader, &mut buf, &mut whole);
    let mut offset = 0;
    for result in &whole {
        let Ok(pdu) = result else { break };
        let total = reader
            .check_header(&stream[offset..])
            .expect("header was accepted by read")
            .expect("header was complete");
        let raw = Bytes::copy_from_slice(&stream[offset..offset + total]);
        assert_eq!(reader.decode(raw.clone()).as_ref(), Ok(pdu));
        check_round_trip(pdu);
        if let Pdu::PDataTf(_) = pdu {
            let encoded = pdu.encode().expect("P-DATA-TF encodes");
            assert_eq!(
                encoded[6..],
                raw[6..],
                "P-DATA-TF body must re-encode exactly"
            );
        }
        offset += total;
    }

    // The same stream in chunks.
    let mut chunked = Vec::new();
    let mut buf = BytesMut::new();
    let mut at = 0;
    let mut i = 0;
    while at < stream.len() {
        let size = (usize::from(sizes[i % sizes.len()]) + 1).min(stream.len() - at);
        i += 1;
        buf.extend_from_slice(&stream[at..at + size]);
        at += size;
        if !drain(&reader, &mut buf, &mut chunked) {
            break;
        }
    }
    assert_eq!(chunked, whole, "chunking changed what was read");

    // The one-shot decoder with default limits must not panic either.
    let _ = pdu::read::decode(Bytes::copy_from_slice(stream));
});
