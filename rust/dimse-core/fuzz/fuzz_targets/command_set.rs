//! The command set codec and the typed messages on top of it.
//!
//! An input starting with 0x00 is a command set as received (every valid one starts with
//! the (0000,0000) tag); anything else is a program of edits for the builder API, so that
//! what we send is fuzzed as well as what we receive.
//!
//! Properties checked when decoding:
//! - no panic;
//! - a command set that decodes re-encodes to the very same bytes (the codec is lossless
//!   for what it accepts: the group length must match, order and values are kept) and
//!   decodes again to an equal value;
//! - a typed command that decodes either re-encodes to bytes that decode to the same
//!   command, or is refused by one of the checks that only run on encode (value syntax,
//!   conditional rules); any other encode error is a bug;
//! - `Command::decode` never accepts what `CommandSet::decode` refuses.
//!
//! Properties checked when building: whatever sequence of `set_*`/`remove` calls the
//! builder accepted encodes to bytes that decode to an equal command set.
#![no_main]

use dimse_core::message::element::Tag;
use dimse_core::message::{Command, CommandError, CommandSet};
use libfuzzer_sys::fuzz_target;

fn check_decode(data: &[u8]) {
    let raw = CommandSet::decode(data);
    if let Ok(cs) = &raw {
        let encoded = cs.encode();
        assert_eq!(
            encoded, data,
            "an accepted command set must re-encode exactly"
        );
        assert_eq!(cs.encoded_len(), data.len());
        assert_eq!(CommandSet::decode(&encoded).as_ref(), Ok(cs));
        // The accessors must not panic on anything the decoder accepted.
        for (el, _) in cs.iter() {
            let _ = (
                cs.get_us(el),
                cs.get_ul(el),
                cs.get_str(el),
                cs.get_tags(el),
            );
        }
        let _ = (cs.command_field(), cs.has_dataset(), format!("{cs:?}"));
    }

    let Ok(decoded) = Command::decode(data) else {
        return;
    };
    assert!(
        raw.is_ok(),
        "Command::decode accepted what CommandSet::decode refused"
    );
    let _ = (
        decoded.command.name(),
        decoded.command.message_id(),
        decoded.command.status(),
        decoded.command.is_response(),
    );
    match decoded.command.encode(decoded.has_dataset) {
        Ok(bytes) => {
            let again = Command::decode(&bytes).expect("an encoded command must decode");
            assert_eq!(again, decoded, "decode(encode(command)) != command");
        }
        // Decoding is lenient where peers differ, encoding is strict about what we send:
        // string syntax (UID characters, AE repertoire, lengths) and the conditional rules
        // of PS3.7 (e.g. an identifier only with a pending C-FIND-RSP).
        Err(CommandError::InvalidValue { .. } | CommandError::ConditionNotMet { .. }) => {}
        Err(other) => panic!("a decoded command failed to encode: {other}"),
    }
}

/// Interprets `data` as builder calls: op, element (2 bytes LE), value length, value.
fn check_build(data: &[u8]) {
    let mut cs = CommandSet::new();
    let mut rest = data;
    while let [op, lo, hi, len, tail @ ..] = rest {
        let element = u16::from_le_bytes([*lo, *hi]);
        let len = usize::from(*len).min(tail.len());
        let (value, tail) = tail.split_at(len);
        rest = tail;
        let before = cs.clone();
        let result = match op % 5 {
            0 => cs.set_raw(element, value),
            1 => cs.set_str(element, &String::from_utf8_lossy(value)),
            2 => {
                let byte = |i: usize| value.get(i).copied().unwrap_or(0);
                cs.set_us(element, u16::from_le_bytes([byte(0), byte(1)]))
            }
            3 => {
                let tags: Vec<Tag> = value
                    .chunks_exact(4)
                    .map(|c| {
                        Tag(
                            u16::from_le_bytes([c[0], c[1]]),
                            u16::from_le_bytes([c[2], c[3]]),
                        )
                    })
                    .collect();
                cs.set_tags(element, &tags)
            }
            _ => {
                let present = cs.contains(element);
                assert_eq!(cs.remove(element), present);
                assert!(!cs.contains(element));
                Ok(())
            }
        };
        match result {
            Ok(()) if op % 5 != 4 => assert!(cs.contains(element)),
            Ok(()) => {}
            Err(_) => assert_eq!(
                cs, before,
                "a refused set must leave the command set as it was"
            ),
        }
    }
    let encoded = cs.encode();
    assert_eq!(encoded.len(), cs.encoded_len());
    let decoded = CommandSet::decode(&encoded).expect("what the builder accepted must decode");
    assert_eq!(decoded, cs);
    let elements: Vec<u16> = cs.iter().map(|(e, _)| e).collect();
    assert!(
        elements.windows(2).all(|w| w[0] < w[1]),
        "elements out of order"
    );
}

fuzz_target!(|data: &[u8]| {
    match data.first() {
        Some(0) | None => check_decode(data),
        Some(_) => check_build(&data[1..]),
    }
});
