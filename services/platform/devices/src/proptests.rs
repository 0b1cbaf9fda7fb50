//! Property tests: random guest register traffic (any offset, any size,
//! any value, any order, time moving forward by arbitrary steps) never
//! panics any model and keeps their invariants.

use proptest::prelude::*;

use crate::bus::tests::{bus, Capture};
use crate::lapic::{LapicConfig, LapicEffect, LocalApic};
use crate::msg::{ApicMessage, DeliveryMode, DestinationMode, Shorthand, TriggerMode};
use crate::pit::Pit;
use crate::rtc::Rtc;
use crate::uart::{SerialSink, Uart, RX_CAPACITY};
use crate::IoApic;

#[derive(Clone, Debug)]
enum LapicOp {
    Read(u64, u8),
    Write(u64, u8, u64),
    Accept(u8, bool),
    Ack(u8),
    Tick(u64, u64),
    Receive(u32, u8, bool),
    TscDeadline(u64, u64),
    ApicBase(u64),
}

fn lapic_offset() -> impl Strategy<Value = u64> {
    prop_oneof![(0u64..0x40).prop_map(|r| r << 4), 0u64..0x1100, any::<u64>()]
}

fn lapic_op() -> impl Strategy<Value = LapicOp> {
    prop_oneof![
        (lapic_offset(), 0u8..10).prop_map(|(o, s)| LapicOp::Read(o, s)),
        (lapic_offset(), prop_oneof![Just(4u8), 0u8..10], any::<u64>()).prop_map(|(o, s, v)| LapicOp::Write(o, s, v)),
        (any::<u8>(), any::<bool>()).prop_map(|(v, l)| LapicOp::Accept(v, l)),
        any::<u8>().prop_map(LapicOp::Ack),
        (0u64..10_000_000, any::<u64>()).prop_map(|(d, t)| LapicOp::Tick(d, t)),
        (any::<u32>(), any::<u8>(), any::<bool>()).prop_map(|(m, v, l)| LapicOp::Receive(m, v, l)),
        (any::<u64>(), any::<u64>()).prop_map(|(d, t)| LapicOp::TscDeadline(d, t)),
        any::<u64>().prop_map(LapicOp::ApicBase),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn lapic_survives_random_traffic(
        bus_hz in prop_oneof![Just(1_000_000_000u64), any::<u64>()],
        start in any::<u64>(),
        ops in proptest::collection::vec(lapic_op(), 1..200),
    ) {
        let mut a = LocalApic::new(1, true, LapicConfig { bus_hz });
        let mut now = start / 2;
        for op in ops {
            match op {
                LapicOp::Read(o, s) => {
                    let v = a.read(o, s, now);
                    prop_assert!(s >= 8 || v >> (u32::from(s.max(1)) * 8) == 0);
                }
                LapicOp::Write(o, s, v) => {
                    if let LapicEffect::Eoi { vector, .. } = a.write(o, s, v, now) {
                        prop_assert!(!a.isr(vector));
                    }
                }
                LapicOp::Accept(v, l) => {
                    a.accept(v, l);
                }
                LapicOp::Ack(v) => {
                    a.ack(v);
                }
                LapicOp::Tick(d, t) => {
                    now = now.saturating_add(d);
                    a.tick(now, t);
                }
                LapicOp::Receive(m, v, l) => {
                    let msg = ApicMessage {
                        vector: v,
                        delivery_mode: DeliveryMode::from_bits(m),
                        destination_mode: DestinationMode::Physical,
                        destination: 1,
                        trigger: if l { TriggerMode::Level } else { TriggerMode::Edge },
                        assert: m & 8 != 0,
                        shorthand: Shorthand::None,
                    };
                    a.receive(&msg);
                }
                LapicOp::TscDeadline(d, t) => a.write_tsc_deadline(d, t),
                LapicOp::ApicBase(v) => {
                    a.write_apic_base_msr(v);
                }
            }
            if let Some(v) = a.pending_interrupt() {
                prop_assert!(a.irr(v));
                prop_assert!(v >> 4 > a.ppr() >> 4);
                prop_assert!(v >= 16);
            }
            prop_assert!(a.ppr() >> 4 >= a.tpr() >> 4);
            prop_assert_eq!(a.apic_base_msr() & 0xFFFF_F000, 0xFEE0_0000);
        }
    }

    #[test]
    fn ioapic_survives_random_traffic(
        ops in proptest::collection::vec((0u8..6, any::<u64>(), 0u8..10, any::<u64>()), 1..300),
    ) {
        let mut io = IoApic::new(0);
        for (kind, a, s, v) in ops {
            let d = match kind {
                0 => { io.read(a % 0x100, s); continue; }
                1 => io.write(a % 0x50, s, v),
                2 => io.write(0, 1, v % 0x40),
                3 => io.write(0x10, 4, v),
                4 => io.set_irq((a % 30) as usize, v & 1 != 0),
                _ => io.eoi(v as u8),
            };
            prop_assert_eq!(d.dropped, 0);
            for m in d.iter() {
                prop_assert!(m.assert);
            }
        }
    }

    #[test]
    fn uart_survives_random_traffic(ops in proptest::collection::vec((0u8..4, 0u16..10, any::<u8>()), 1..400)) {
        struct Null(u64);
        impl SerialSink for Null {
            fn write_byte(&mut self, _: u8) {
                self.0 += 1;
            }
        }
        let mut u = Uart::new(Null(0));
        for (kind, off, v) in ops {
            match kind {
                0 => { u.read(off); }
                1 => u.write(off, v),
                2 => { let _ = u.push_input(v); }
                _ => { u.irq_level(); }
            }
            prop_assert!(u.input_space() <= RX_CAPACITY);
        }
        prop_assert_eq!(u.sink().0, u.stats().tx_bytes);
    }

    #[test]
    fn pit_and_rtc_survive_random_traffic(
        wall in any::<u64>(),
        ops in proptest::collection::vec((0u8..5, 0u16..0x80, any::<u8>(), 0u64..50_000_000), 1..400),
    ) {
        let mut p = Pit::new();
        let mut r = Rtc::new(wall, 0);
        let mut now = 0u64;
        for (kind, port, v, d) in ops {
            now = now.saturating_add(d);
            match kind {
                0 => { p.read(0x40 + port % 4, now); }
                1 => p.write(0x40 + port % 4, v, now),
                2 => p.write_port61(v, now),
                3 => r.write(0x70 + port % 2, v, now),
                _ => {
                    r.read(0x70 + port % 2, now);
                    p.tick(now);
                }
            }
            if let Some(due) = p.next_deadline() {
                // A reported deadline is never in the past once ticked.
                p.tick(now);
                if let Some(d2) = p.next_deadline() {
                    prop_assert!(d2 > now, "deadline {} not after {} (was {})", d2, now, due);
                }
            }
        }
    }

    #[test]
    fn bus_survives_random_traffic(
        ops in proptest::collection::vec(
            (0u8..7, prop_oneof![any::<u16>(), 0x20u16..0x80, 0x3F8u16..0x400, 0x600u16..0x60C, Just(0xCF9u16)],
             0u8..9, any::<u32>(), 0u64..10_000_000),
            1..300),
    ) {
        let mut b = bus();
        let mut now = 0u64;
        for (kind, port, size, v, d) in ops {
            now = now.saturating_add(d);
            let out = match kind {
                0 => {
                    let o = b.port_read(port, size, now);
                    if !o.handled {
                        prop_assert_eq!(o.value, u64::MAX >> (64 - u32::from(size.clamp(1, 8)) * 8));
                    }
                    o
                }
                1 => b.port_write(port, size, v, now),
                2 => b.mmio_read(0xFEC0_0000 + u64::from(port % 0x60), size, now),
                3 => b.mmio_write(0xFEC0_0000 + u64::from(port % 0x60), size, u64::from(v), now),
                4 => b.tick(now),
                5 => b.eoi(v as u8, now),
                _ => match b.push_uart_input(v as u8, now) {
                    Ok(o) => o,
                    Err(_) => continue,
                },
            };
            prop_assert_eq!(out.interrupts.dropped, 0);
        }
        let _: &Capture = b.uart().unwrap().sink();
    }
}
