//! Codec benchmarks: command sets, A-ASSOCIATE-RQ, and a 64 MiB data set cut into
//! P-DATA-TF PDUs and put back together.
//!
//! `cargo bench -p dimse-core --bench codec` (a few minutes on 2 cores). Measurement times
//! are short on purpose: these are for spotting regressions of several percent and for
//! finding where time goes, not for publishing nanoseconds.

use std::hint::black_box;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use dimse_core::message::command::{CFindRsp, CStoreRq, Priority};
use dimse_core::message::{Command, CommandSet, Fragmenter, MessageAssembler, Status};
use dimse_core::pdu::{
    self, AAssociateRq, AeTitle, Pdu, PduReader, PresentationContextRq, UserInformation, UserItem,
    APPLICATION_CONTEXT_NAME, PROTOCOL_VERSION,
};

/// A C-STORE-RQ as a modality sends it: every field, UIDs of realistic length.
fn store_rq() -> (Command, bool) {
    let command = CStoreRq {
        affected_sop_class_uid: "1.2.840.10008.5.1.4.1.1.2".into(),
        message_id: 4711,
        priority: Priority::Medium,
        affected_sop_instance_uid: "1.2.826.0.1.3680043.8.498.10135420951235473893218472".into(),
        move_originator_ae_title: Some("MOVE_SCU".into()),
        move_originator_message_id: Some(12),
    };
    (command.into(), true)
}

/// A pending C-FIND-RSP: the response sent once per match, so the most frequent one.
fn find_rsp() -> (Command, bool) {
    let command = CFindRsp {
        affected_sop_class_uid: Some("1.2.840.10008.5.1.4.1.2.2.1".into()),
        message_id_being_responded_to: 3,
        status: Status::PENDING,
        ..Default::default()
    };
    (command.into(), true)
}

fn command_sets(c: &mut Criterion) {
    let mut g = c.benchmark_group("command_set");
    g.measurement_time(Duration::from_secs(3))
        .warm_up_time(Duration::from_secs(1))
        .throughput(Throughput::Elements(1));
    for (name, (command, has_dataset)) in [("c-store-rq", store_rq()), ("c-find-rsp", find_rsp())] {
        let bytes = command.encode(has_dataset).expect("valid command");
        let raw = CommandSet::decode(&bytes).expect("valid command set");
        g.bench_function(format!("typed_encode/{name}"), |b| {
            b.iter(|| black_box(&command).encode(has_dataset))
        });
        g.bench_function(format!("typed_decode/{name}"), |b| {
            b.iter(|| Command::decode(black_box(&bytes)))
        });
        // What one message costs a peer that sends and one that receives it.
        g.bench_function(format!("typed_encode_decode/{name}"), |b| {
            b.iter(|| {
                let encoded = black_box(&command)
                    .encode(has_dataset)
                    .expect("valid command");
                Command::decode(&encoded)
            })
        });
        g.bench_function(format!("raw_encode/{name}"), |b| {
            b.iter(|| black_box(&raw).encode())
        });
        g.bench_function(format!("raw_decode/{name}"), |b| {
            b.iter(|| CommandSet::decode(black_box(&bytes)))
        });
    }
    g.finish();
}

/// An A-ASSOCIATE-RQ proposing 10 storage and query contexts with 3 transfer syntaxes
/// each, and the usual user information sub-items.
fn associate_rq() -> Pdu {
    let transfer_syntaxes = vec![
        "1.2.840.10008.1.2.1".to_owned(),
        "1.2.840.10008.1.2".to_owned(),
        "1.2.840.10008.1.2.4.70".to_owned(),
    ];
    let presentation_contexts = (0..10u8)
        .map(|i| PresentationContextRq {
            id: 2 * i + 1,
            abstract_syntax: format!("1.2.840.10008.5.1.4.1.1.{}", i + 1),
            transfer_syntaxes: transfer_syntaxes.clone(),
        })
        .collect();
    Pdu::AAssociateRq(AAssociateRq {
        protocol_version: PROTOCOL_VERSION,
        called_ae_title: AeTitle::new("ARCHIVE").expect("valid AE title"),
        calling_ae_title: AeTitle::new("MODALITY_01").expect("valid AE title"),
        application_context_name: APPLICATION_CONTEXT_NAME.into(),
        presentation_contexts,
        user_information: UserInformation {
            items: vec![
                UserItem::MaximumLength {
                    maximum_length: 16384,
                },
                UserItem::ImplementationClassUid {
                    uid: "1.2.826.0.1.3680043.8.498.1".into(),
                },
                UserItem::AsynchronousOperationsWindow {
                    invoked: 1,
                    performed: 1,
                },
                UserItem::ImplementationVersionName {
                    name: "DIMSE_0_1".into(),
                },
            ],
        },
    })
}

fn associate(c: &mut Criterion) {
    let rq = associate_rq();
    let bytes = Bytes::from(rq.encode().expect("valid PDU"));
    let mut g = c.benchmark_group("a_associate_rq_10_contexts");
    g.measurement_time(Duration::from_secs(3))
        .warm_up_time(Duration::from_secs(1))
        .throughput(Throughput::Elements(1));
    g.bench_function("encode", |b| b.iter(|| black_box(&rq).encode()));
    g.bench_function("decode", |b| {
        b.iter(|| pdu::read::decode(black_box(bytes.clone())))
    });
    g.finish();
}

const DATASET_LEN: usize = 64 * 1024 * 1024;

fn fragmentation(c: &mut Criterion) {
    // A non-constant pattern, so that nothing can be special-cased for zeros.
    let dataset: Bytes = (0..DATASET_LEN)
        .map(|i| (i % 251) as u8)
        .collect::<Vec<u8>>()
        .into();
    let (store, _) = store_rq();
    let command = Bytes::from(store.encode(true).expect("valid command"));

    let mut g = c.benchmark_group("data_set_64MiB");
    g.measurement_time(Duration::from_secs(3))
        .warm_up_time(Duration::from_secs(1))
        .sample_size(10)
        .throughput(Throughput::Bytes(DATASET_LEN as u64));
    for (name, max_pdu) in [("16KiB", 16 * 1024u32), ("1MiB", 1024 * 1024)] {
        let fragmenter = Fragmenter::new(max_pdu);

        // Sending: the fragments copied into one send buffer that is reused, as a driver
        // without vectored writes does.
        let mut out = Vec::with_capacity(DATASET_LEN + DATASET_LEN / 1024 + 4096);
        g.bench_function(format!("fragment/{name}"), |b| {
            b.iter(|| {
                out.clear();
                for f in fragmenter.fragments(1, command.clone(), Some(dataset.clone())) {
                    f.encode_into(&mut out);
                }
                black_box(out.len())
            })
        });

        // Receiving: the PDUs as they sit in the receive buffer after the socket reads
        // (that copy is the kernel's, so it is set up outside the timing), read one by one
        // and pushed into the assembler, which joins the fragments into one data set.
        let wire = fragmenter.encode_message(1, command.clone(), Some(dataset.clone()));
        let reader = PduReader::new(max_pdu);
        g.bench_function(format!("reassemble/{name}"), |b| {
            b.iter_batched(
                || BytesMut::from(&wire[..]),
                |mut buf| {
                    let mut assembler = MessageAssembler::default();
                    let mut message = None;
                    while let Some(pdu) = reader.read(&mut buf).expect("valid PDU") {
                        let Pdu::PDataTf(p) = pdu else {
                            unreachable!("only P-DATA-TF were encoded")
                        };
                        for pdv in p.values {
                            if let Some(m) = assembler.push(pdv).expect("valid message") {
                                message = Some(m);
                            }
                        }
                    }
                    message.expect("the message completes")
                },
                BatchSize::PerIteration,
            )
        });
    }
    g.finish();
}

criterion_group!(benches, command_sets, associate, fragmentation);
criterion_main!(benches);
