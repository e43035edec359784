//! Hostile structure: each input is built to make a scanner spend unbounded
//! time or memory. The tests check that the walk stops where the limits say
//! and records why; time and memory are measured in release mode with
//! `examples/hostile.rs` (see the README of the crate's report).

use inspect_milter::inspect::{Limits, Reason, TargetKind, Walk, walk};

use super::hostile_inputs::*;

fn reasons(walked: &Walk<'_>) -> Vec<Reason> {
    walked.uninspectable.iter().map(|u| u.reason).collect()
}

fn scanned_bytes(walked: &Walk<'_>) -> u64 {
    walked.targets.iter().map(|t| t.data.len() as u64).sum()
}

#[test]
fn recursive_zip_bomb_stops_at_archive_depth_and_budget() {
    let bomb = recursive_bomb(5, 16, 1 << 20);
    let message = with_attachment("42.zip", "application/zip", &bomb);
    let limits = Limits::default();
    let walked = walk(&message, &limits);
    assert!(reasons(&walked).contains(&Reason::OverDepth), "{:?}", walked.uninspectable);
    let members = walked.targets.iter().filter(|t| t.kind == TargetKind::ArchiveMember).count();
    assert!(members <= limits.max_archive_members as usize, "{members} members");
    assert!(scanned_bytes(&walked) <= limits.max_total_bytes + 4 * 1024 * 1024);
    assert!(walked.targets.iter().all(|t| t.part_path.matches('!').count() <= 3));
}

#[test]
fn overlapping_entry_bomb_reads_the_shared_data_once() {
    let bomb = overlapping_bomb(5000, 4 << 20);
    let message = with_attachment("bomb.zip", "application/zip", &bomb);
    let walked = walk(&message, &Limits::default());
    assert!(
        walked.uninspectable.iter().any(|u| u.reason == Reason::ExpansionRatio && u.part_path == "2"),
        "{:?}",
        walked.uninspectable
    );
    let members = walked.targets.iter().filter(|t| t.kind == TargetKind::ArchiveMember).count();
    assert_eq!(members, 1);
}

#[test]
fn thousand_deep_multipart_stops_at_max_depth() {
    let message = deep_multipart(1000);
    let walked = walk(&message, &Limits::default());
    let over: Vec<_> = walked.uninspectable.iter().filter(|u| u.reason == Reason::OverDepth).collect();
    assert_eq!(over.len(), 1, "{:?}", walked.uninspectable);
    assert_eq!(over[0].part_path.split('.').count(), 21);
    assert!(walked.parts.len() < 30);
}

#[test]
fn hundred_thousand_nested_messages_do_not_overflow_the_stack() {
    let message = deep_messages(100_000);
    let walked = walk(&message, &Limits::default());
    assert!(reasons(&walked).contains(&Reason::OverDepth));
    assert!(walked.anomalies.iter().any(|a| a.code == "deep-message-nesting"));
}

#[test]
fn encoded_nested_messages_are_walked_with_our_own_depth_limit() {
    let message = encoded_deep_messages(20_000);
    let walked = walk(&message, &Limits::default());
    assert!(reasons(&walked).contains(&Reason::OverDepth), "{:?}", walked.uninspectable);
    assert!(walked.anomalies.iter().any(|a| a.code == "encoded-message"));
}

#[test]
fn ten_thousand_parts_stop_at_max_parts_and_the_rest_is_scanned_raw() {
    let message = many_parts(10_000);
    let limits = Limits::default();
    let walked = walk(&message, &limits);
    let over: Vec<_> = walked.uninspectable.iter().filter(|u| u.reason == Reason::OverParts).collect();
    assert_eq!(over.len(), 1);
    let texts = walked.targets.iter().filter(|t| t.kind == TargetKind::Text).count();
    assert!(texts < limits.max_parts as usize);
    let raw = walked.targets.iter().find(|t| t.kind == TargetKind::RawPart).expect("the rest is scanned raw");
    assert!(raw.data.ends_with(b"--b--\n"));
}

#[test]
fn hundred_kib_header_is_reported_and_walked() {
    let message = huge_header(100 * 1024);
    let walked = walk(&message, &Limits::default());
    assert!(walked.anomalies.iter().any(|a| a.code == "long-header-line"));
    let long = walked
        .targets
        .iter()
        .find(|t| t.header_name.as_deref() == Some("X-Long"))
        .expect("the long field is a target");
    assert_eq!(long.data.len(), 100 * 1024);
    assert!(walked.targets.iter().any(|t| t.kind == TargetKind::Subject));
}

#[test]
fn oversized_part_is_cut_at_max_part_bytes() {
    let limits = Limits { max_part_bytes: 1024 * 1024, ..Limits::default() };
    let message = single_line_body(3 * 1024 * 1024);
    let walked = walk(&message, &limits);
    assert!(reasons(&walked).contains(&Reason::OverSize));
    let text = walked.targets.iter().find(|t| t.kind == TargetKind::Text).expect("text");
    assert_eq!(text.data.len(), 1024 * 1024);
}

/// The 100 MB single-line case (about 20 s in a debug build; its time and memory are measured
/// in release with `examples/walk.rs`).
#[test]
fn hundred_megabyte_single_line_body_is_cut_at_the_part_limit() {
    let limits = Limits::default();
    let message = single_line_body(100 * 1024 * 1024);
    let walked = walk(&message, &limits);
    assert!(reasons(&walked).contains(&Reason::OverSize));
    let text = walked.targets.iter().find(|t| t.kind == TargetKind::Text).expect("text");
    assert_eq!(text.data.len() as u64, limits.max_part_bytes);
}

#[test]
fn total_budget_spans_parts() {
    let limits = Limits { max_total_bytes: 100, ..Limits::default() };
    let mut message = b"Subject: x\nContent-Type: multipart/mixed; boundary=b\n\n".to_vec();
    for _ in 0..5 {
        message.extend_from_slice(b"--b\nContent-Type: application/octet-stream\n\n");
        message.extend_from_slice(&[b'x'; 60]);
        message.push(b'\n');
    }
    message.extend_from_slice(b"--b--\n");
    let walked = walk(&message, &limits);
    let attachment_bytes: usize =
        walked.targets.iter().filter(|t| t.kind == TargetKind::Attachment).map(|t| t.data.len()).sum();
    assert!(attachment_bytes <= 100, "{attachment_bytes}");
    assert!(reasons(&walked).contains(&Reason::OverSize));
}

#[test]
fn text_that_grows_into_utf8_is_charged_and_cut_at_the_budget() {
    // Every invalid byte becomes U+FFFD (three bytes): three parts of 0xFF would scan three
    // times what the budget paid for.
    let mut message = b"From: a@example.org\r\nSubject: x\r\nMIME-Version: 1.0\r\n\
        Content-Type: multipart/mixed; boundary=\"b\"\r\n\r\n"
        .to_vec();
    for _ in 0..3 {
        message.extend_from_slice(b"--b\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n");
        message.extend_from_slice(&[0xFF; 4000]);
        message.extend_from_slice(b"\r\n");
    }
    message.extend_from_slice(b"--b--\r\n");
    let limits = Limits { max_total_bytes: 6000, ..Limits::default() };
    let walked = walk(&message, &limits);
    let text: u64 =
        walked.targets.iter().filter(|t| t.kind == TargetKind::Text).map(|t| t.data.len() as u64).sum();
    assert!(text <= limits.max_total_bytes, "{text} bytes of text kept for a budget of 6000");
    assert!(walked.uninspectable.iter().any(|u| u.reason == Reason::OverSize), "{:?}", walked.uninspectable);
    for t in walked.targets.iter().filter(|t| t.kind == TargetKind::Text) {
        assert!(std::str::from_utf8(&t.data).is_ok(), "cut at a character boundary");
    }
}
