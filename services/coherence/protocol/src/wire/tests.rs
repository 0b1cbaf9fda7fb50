extern crate std;

use std::vec;
use std::vec::Vec;

use proptest::prelude::*;

use super::*;
use crate::{Access, Fill, GuestPage, NodeId, MAX_GUEST_PAGE};

fn arb_page() -> impl Strategy<Value = GuestPage> {
    prop_oneof![Just(0u64), Just(MAX_GUEST_PAGE), 0..=MAX_GUEST_PAGE, 0u64..300,]
        .prop_map(|n| GuestPage::new(n).unwrap())
}

fn arb_node() -> impl Strategy<Value = NodeId> {
    (0u8..64).prop_map(|n| NodeId::new(n).unwrap())
}

fn arb_access() -> impl Strategy<Value = Access> {
    prop_oneof![Just(Access::Read), Just(Access::Write)]
}

fn arb_fill() -> impl Strategy<Value = Fill> {
    prop_oneof![Just(Fill::Data), Just(Fill::Zero), Just(Fill::Keep)]
}

pub(crate) fn arb_message() -> impl Strategy<Value = Message> {
    prop_oneof![
        arb_page().prop_map(|page| Message::GetS { page }),
        arb_page().prop_map(|page| Message::GetM { page }),
        arb_page().prop_map(|page| Message::Upgrade { page }),
        arb_page().prop_map(|page| Message::PutM { page }),
        (arb_page(), arb_access(), arb_fill()).prop_map(|(page, access, fill)| Message::Grant { page, access, fill }),
        arb_page().prop_map(|page| Message::Nack { page }),
        arb_page().prop_map(|page| Message::PutAck { page }),
        arb_page().prop_map(|page| Message::Inv { page }),
        arb_page().prop_map(|page| Message::InvAck { page }),
        (arb_page(), arb_node()).prop_map(|(page, requester)| Message::FwdGetS { page, requester }),
        (arb_page(), arb_node()).prop_map(|(page, requester)| Message::FwdGetM { page, requester }),
        (arb_page(), any::<bool>()).prop_map(|(page, keep)| Message::FwdData { page, keep }),
        arb_page().prop_map(|page| Message::OwnerData { page }),
        arb_page().prop_map(|page| Message::Unblock { page }),
    ]
}

fn page_of(seed: u8) -> [u8; PAGE_SIZE] {
    let mut p = [0u8; PAGE_SIZE];
    for (i, b) in p.iter_mut().enumerate() {
        *b = (i as u8).wrapping_mul(31).wrapping_add(seed);
    }
    p
}

fn encode_vec(msg: &Message, page: &[u8; PAGE_SIZE]) -> Vec<u8> {
    let mut buf = vec![0u8; PAGE_FRAME_LEN];
    let data = msg.carries_page().then_some(page);
    let n = encode(msg, data, &mut buf).unwrap();
    buf.truncate(n);
    buf
}

proptest! {
    #[test]
    fn every_message_round_trips(msg in arb_message(), seed in any::<u8>()) {
        let page = page_of(seed);
        let bytes = encode_vec(&msg, &page);
        prop_assert_eq!(bytes.len(), encoded_len(&msg));
        if msg.carries_page() {
            prop_assert_eq!(bytes[0], FORMAT_PAGE);
        } else {
            prop_assert_eq!(bytes[0], FORMAT_CONTROL);
            prop_assert!(bytes.len() <= MAX_CONTROL_LEN);
        }
        let decoded = decode(&bytes).unwrap();
        prop_assert_eq!(decoded.msg, msg);
        prop_assert_eq!(decoded.page.map(|p| &p[..]), msg.carries_page().then_some(&page[..]));
    }

    #[test]
    fn garbage_never_panics_and_what_decodes_re_encodes(bytes in proptest::collection::vec(any::<u8>(), 0..64)) {
        if let Ok(d) = decode(&bytes) {
            let again = encode_vec(&d.msg, &[0; PAGE_SIZE]);
            prop_assert_eq!(decode(&again).unwrap().msg, d.msg);
        }
    }

    #[test]
    fn garbage_after_a_valid_format_byte_never_panics(
        format in prop_oneof![Just(FORMAT_CONTROL), Just(FORMAT_PAGE)],
        body in proptest::collection::vec(any::<u8>(), 0..(PAGE_FRAME_LEN + 8)),
    ) {
        let mut bytes = vec![format];
        bytes.extend_from_slice(&body);
        if let Ok(d) = decode(&bytes) {
            prop_assert_eq!(d.page.is_some(), d.msg.carries_page());
        }
    }

    #[test]
    fn damaged_frames_are_rejected_or_decode_to_a_valid_message(
        msg in arb_message(),
        cut in any::<prop::sample::Index>(),
        flip in any::<prop::sample::Index>(),
        xor in 1u8..,
    ) {
        let bytes = encode_vec(&msg, &page_of(7));
        // Any strict prefix is an error, never a panic nor a shorter message.
        let short = &bytes[..cut.index(bytes.len())];
        prop_assert!(decode(short).is_err());
        // Any one-byte change decodes to something valid or to an error.
        let mut changed = bytes.clone();
        let i = flip.index(changed.len());
        changed[i] ^= xor;
        if let Ok(d) = decode(&changed) {
            prop_assert_eq!(d.page.is_some(), d.msg.carries_page());
        }
        // A byte too many is an error.
        let mut long = bytes;
        long.push(0);
        prop_assert!(decode(&long).is_err());
    }
}

#[test]
fn page_message_layout_is_fixed() {
    assert_eq!(core::mem::size_of::<PageHeader>(), 12);
    assert_eq!(PAGE_FRAME_LEN, 1 + 12 + 4096);
    let page = GuestPage::new(0x01_0203_0405).unwrap();
    let bytes = encode_vec(&Message::FwdData { page, keep: true }, &page_of(1));
    assert_eq!(&bytes[..13], &[FORMAT_PAGE, KIND_FWD_DATA, 0, 1, 0, 5, 4, 3, 2, 1, 0, 0, 0]);
}

#[test]
fn out_of_range_fields_are_rejected() {
    // Page number above 52 bits in a page header.
    let mut bytes = encode_vec(&Message::OwnerData { page: GuestPage::new(1).unwrap() }, &page_of(0));
    bytes[12] = 0xff;
    assert_eq!(decode(&bytes), Err(WireError::BadPage));
    // Reserved byte set.
    let mut bytes = encode_vec(&Message::OwnerData { page: GuestPage::new(1).unwrap() }, &page_of(0));
    bytes[4] = 1;
    assert_eq!(decode(&bytes), Err(WireError::BadField));
    // Unknown page kind.
    bytes[4] = 0;
    bytes[1] = 99;
    assert_eq!(decode(&bytes), Err(WireError::BadPageKind));
    // Node id 64 in a forward.
    let msg = Message::FwdGetM { page: GuestPage::new(3).unwrap(), requester: NodeId::new(63).unwrap() };
    let mut bytes = encode_vec(&msg, &page_of(0));
    let last = bytes.len() - 1;
    assert_eq!(bytes[last], 63);
    bytes[last] = 64;
    assert_eq!(decode(&bytes), Err(WireError::BadNode));
    // A data grant dressed as a control message.
    let mut buf = [0u8; 16];
    buf[0] = FORMAT_CONTROL;
    let n = postcard::to_slice(&Control::Grant { page: 1, access: Access::Read, fill: Fill::Data }, &mut buf[1..])
        .unwrap()
        .len();
    assert_eq!(decode(&buf[..1 + n]), Err(WireError::BadField));
    assert_eq!(decode(&[]), Err(WireError::Truncated));
    assert_eq!(decode(&[0x00, 1, 2]), Err(WireError::UnknownFormat));
}

#[test]
fn encoding_checks_page_presence_and_room() {
    let page = GuestPage::new(1).unwrap();
    let mut buf = vec![0u8; PAGE_FRAME_LEN];
    assert_eq!(encode(&Message::PutM { page }, None, &mut buf), Err(WireError::PageMismatch));
    assert_eq!(encode(&Message::Inv { page }, Some(&page_of(0)), &mut buf), Err(WireError::PageMismatch));
    assert_eq!(encode(&Message::PutM { page }, Some(&page_of(0)), &mut buf[..100]), Err(WireError::BufferTooSmall));
    assert_eq!(encode(&Message::Inv { page }, None, &mut []), Err(WireError::BufferTooSmall));
}
