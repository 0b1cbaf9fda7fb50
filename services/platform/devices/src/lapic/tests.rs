//! Local APIC unit tests: Linux's setup sequences, priorities, IPIs, timers, odd accesses.

use super::*;

fn apic() -> LocalApic {
    let mut a = LocalApic::new(2, true, LapicConfig { bus_hz: 100_000_000 });
    a.write(reg::SVR, 4, 0x1FF, 0);
    a
}

#[test]
fn power_on_state_and_id_version() {
    let mut a = LocalApic::new(3, false, LapicConfig::default());
    assert_eq!(a.read(reg::ID, 4, 0), 3 << 24);
    assert_eq!(a.read(reg::VERSION, 4, 0), 0x0005_0014);
    // Linux lapic_get_maxlvt: ((v >> 16) & 0xFF) when integrated.
    assert_eq!((a.read(reg::VERSION, 4, 0) >> 16) & 0xFF, 5);
    assert_eq!(a.read(reg::SVR, 4, 0), 0xFF);
    assert_eq!(a.read(reg::DFR, 4, 0), 0xFFFF_FFFF);
    assert_eq!(a.read(reg::LVT_LINT0, 4, 0), u64::from(LVT_MASKED));
    assert!(!a.software_enabled());
    assert_eq!(a.apic_base_msr(), 0xFEE0_0800);
    assert_eq!(LocalApic::new(0, true, LapicConfig::default()).apic_base_msr(), 0xFEE0_0900);
}

#[test]
fn linux_setup_local_apic_sequence() {
    let mut a = LocalApic::new(1, false, LapicConfig::default());
    // TPR 0, flat DFR, LDR = 1 << cpu, SVR enable | vector 0xFF.
    a.write(reg::TPR, 4, 0, 0);
    a.write(reg::DFR, 4, 0xFFFF_FFFF, 0);
    a.write(reg::LDR, 4, 2 << 24, 0);
    let svr = (a.read(reg::SVR, 4, 0) & !0xFF) | 0x100 | 0xFF;
    a.write(reg::SVR, 4, svr, 0);
    assert!(a.software_enabled());
    // LINT0 masked ExtINT, LINT1 NMI, error vector 0xFE.
    a.write(reg::LVT_LINT0, 4, 0x1_0700, 0);
    a.write(reg::LVT_LINT1, 4, 0x400, 0);
    a.write(reg::LVT_ERROR, 4, 0xFE, 0);
    assert_eq!(a.lvt(Lvt::Lint1), 0x400);
    // ESR clear: two back-to-back writes then a read.
    a.write(reg::ESR, 4, 0, 0);
    a.write(reg::ESR, 4, 0, 0);
    assert_eq!(a.read(reg::ESR, 4, 0), 0);
    let t = a.target();
    assert_eq!((t.apic_id, t.logical_id, t.cluster_model, t.enabled), (1, 2, false, true));
    a.write(reg::DFR, 4, 0x0FFF_FFFF, 0);
    assert!(a.target().cluster_model);
}

#[test]
fn priority_ack_eoi() {
    let mut a = apic();
    assert!(a.accept(0x31, false));
    assert!(a.accept(0x52, true));
    assert_eq!(a.pending_interrupt(), Some(0x52));
    assert!(a.ack(0x52));
    assert_eq!(a.ppr(), 0x50);
    // 0x31 is below the in-service class.
    assert_eq!(a.pending_interrupt(), None);
    assert!(a.accept(0x61, false));
    assert_eq!(a.pending_interrupt(), Some(0x61));
    a.ack(0x61);
    assert_eq!(a.write(reg::EOI, 4, 0, 0), LapicEffect::Eoi { vector: 0x61, level_triggered: false });
    assert_eq!(a.write(reg::EOI, 4, 0, 0), LapicEffect::Eoi { vector: 0x52, level_triggered: true });
    assert_eq!(a.pending_interrupt(), Some(0x31));
    a.write(reg::TPR, 4, 0x30, 0);
    assert_eq!(a.pending_interrupt(), None);
    assert_eq!(a.read(reg::PPR, 4, 0), 0x30);
    assert_eq!(a.read(reg::IRR0 + 0x10, 4, 0), 1 << (0x31 - 32));
    assert_eq!(a.write(reg::EOI, 4, 0, 0), LapicEffect::None);
}

#[test]
fn illegal_vectors_and_disabled_apic() {
    let mut a = apic();
    assert!(!a.accept(5, false));
    a.write(reg::ESR, 4, 0, 0);
    assert_eq!(a.read(reg::ESR, 4, 0), u64::from(ESR_RECEIVE_ILLEGAL_VECTOR));
    a.write(reg::SVR, 4, 0xFF, 0);
    assert!(!a.accept(0x40, false));
    assert_eq!(a.stats().refused, 2);
    // Writes to LVTs while software-disabled keep the mask.
    a.write(reg::LVT_TIMER, 4, 0xEC, 0);
    assert_eq!(a.lvt(Lvt::Timer) & LVT_MASKED, LVT_MASKED);
}

#[test]
fn icr_decodes_ipis() {
    let mut a = apic();
    a.write(reg::ICR_HIGH, 4, 5 << 24, 0);
    // INIT assert, level, physical.
    let LapicEffect::Ipi(m) = a.write(reg::ICR_LOW, 4, 0xC500, 0) else { panic!() };
    assert_eq!(
        (m.delivery_mode, m.destination, m.assert, m.trigger),
        (DeliveryMode::Init, 5, true, TriggerMode::Level)
    );
    assert!(!m.is_init_deassert());
    let LapicEffect::Ipi(m) = a.write(reg::ICR_LOW, 4, 0x8500, 0) else { panic!() };
    assert!(m.is_init_deassert());
    // SIPI vector 0x9A.
    let LapicEffect::Ipi(m) = a.write(reg::ICR_LOW, 4, 0x469A, 0) else { panic!() };
    assert_eq!((m.delivery_mode, m.vector), (DeliveryMode::StartUp, 0x9A));
    // Fixed all-but-self, logical.
    let LapicEffect::Ipi(m) = a.write(reg::ICR_LOW, 4, 0xC_0800 | 0xFD, 0) else { panic!() };
    assert_eq!((m.shorthand, m.destination_mode), (Shorthand::AllExcludingSelf, DestinationMode::Logical));
    // Self NMI.
    let LapicEffect::Ipi(m) = a.write(reg::ICR_LOW, 4, 0x4_0400, 0) else { panic!() };
    assert_eq!((m.shorthand, m.delivery_mode), (Shorthand::SelfOnly, DeliveryMode::Nmi));
    // Delivery status reads idle.
    assert_eq!(a.read(reg::ICR_LOW, 4, 0) & (1 << 12), 0);
    // Fixed vector 3 is illegal: no IPI, ESR send-illegal.
    assert_eq!(a.write(reg::ICR_LOW, 4, 0x03, 0), LapicEffect::None);
    a.write(reg::ESR, 4, 0, 0);
    assert_eq!(a.read(reg::ESR, 4, 0), u64::from(ESR_SEND_ILLEGAL_VECTOR));
}

#[test]
fn receive_modes() {
    let mut a = apic();
    let mut m = ApicMessage {
        vector: 0x41,
        delivery_mode: DeliveryMode::Fixed,
        destination_mode: DestinationMode::Physical,
        destination: 2,
        trigger: TriggerMode::Level,
        assert: true,
        shorthand: Shorthand::None,
    };
    assert_eq!(a.receive(&m), Received::Queued);
    assert!(a.tmr(0x41));
    m.delivery_mode = DeliveryMode::StartUp;
    assert_eq!(a.receive(&m), Received::StartUp { vector: 0x41 });
    m.delivery_mode = DeliveryMode::Nmi;
    assert_eq!(a.receive(&m), Received::Nmi);
    m.delivery_mode = DeliveryMode::Init;
    assert_eq!(a.receive(&m), Received::Init);
    assert!(!a.irr(0x41));
    assert_eq!(a.read(reg::SVR, 4, 0), 0xFF);
}

#[test]
fn one_shot_and_periodic_timer() {
    // 100 MHz bus, divide by 2 (divide register 0): 20 ns per count.
    let mut a = apic();
    a.write(reg::TIMER_DIVIDE, 4, 0, 0);
    a.write(reg::LVT_TIMER, 4, 0xEF, 0);
    a.write(reg::TIMER_INITIAL, 4, 1000, 1_000);
    assert_eq!(a.next_deadline(), Some(Deadline::Nanos(21_000)));
    assert_eq!(a.read(reg::TIMER_CURRENT, 4, 11_000), 500);
    assert!(!a.tick(20_999, 0));
    assert!(a.tick(21_000, 0));
    assert_eq!(a.pending_interrupt(), Some(0xEF));
    assert_eq!(a.read(reg::TIMER_CURRENT, 4, 30_000), 0);
    assert_eq!(a.next_deadline(), None);
    // Periodic, divide by 1 (0b1011): 10 ns per count.
    a.write(reg::TIMER_DIVIDE, 4, 0xB, 0);
    a.write(reg::LVT_TIMER, 4, 0x2_00EE, 0);
    a.write(reg::TIMER_INITIAL, 4, 100, 0);
    assert_eq!(a.next_deadline(), Some(Deadline::Nanos(1_000)));
    assert_eq!(a.read(reg::TIMER_CURRENT, 4, 1_250), 75);
    assert!(a.tick(3_500, 0));
    assert_eq!(a.next_deadline(), Some(Deadline::Nanos(4_000)));
    assert!(a.irr(0xEE));
    // Writing 0 stops it.
    a.write(reg::TIMER_INITIAL, 4, 0, 5_000);
    assert_eq!(a.next_deadline(), None);
    // Masked: counts but does not deliver.
    let before = a.stats().timer_fires;
    a.write(reg::LVT_TIMER, 4, 0x1_00ED, 0);
    a.write(reg::TIMER_INITIAL, 4, 10, 0);
    assert!(a.tick(1_000, 0));
    assert!(!a.irr(0xED));
    assert_eq!(a.stats().timer_fires, before + 1);
}

#[test]
fn divide_encoding() {
    let mut a = apic();
    for (reg_val, div) in [(0, 2), (1, 4), (2, 8), (3, 16), (8, 32), (9, 64), (0xA, 128), (0xB, 1)] {
        a.write(reg::TIMER_DIVIDE, 4, reg_val, 0);
        assert_eq!(a.divider(), div);
    }
}

#[test]
fn tsc_deadline_mode() {
    let mut a = apic();
    // Ignored outside TSC-deadline mode.
    a.write_tsc_deadline(5_000, 0);
    assert_eq!(a.read_tsc_deadline(), 0);
    a.write(reg::LVT_TIMER, 4, 0x4_00EC, 0);
    assert_eq!(a.timer_mode(), TimerMode::TscDeadline);
    // Initial count is ignored in this mode.
    a.write(reg::TIMER_INITIAL, 4, 123, 0);
    assert_eq!(a.read(reg::TIMER_INITIAL, 4, 0), 0);
    a.write_tsc_deadline(5_000, 1_000);
    assert_eq!(a.next_deadline(), Some(Deadline::Tsc(5_000)));
    assert!(!a.tick(0, 4_999));
    assert!(a.tick(0, 5_000));
    assert_eq!(a.read_tsc_deadline(), 0);
    assert_eq!(a.pending_interrupt(), Some(0xEC));
    // A deadline in the past fires at once.
    a.ack(0xEC);
    a.write_tsc_deadline(10, 20);
    assert!(a.irr(0xEC));
    // Leaving the mode disarms.
    a.write_tsc_deadline(50_000, 20);
    a.write(reg::LVT_TIMER, 4, 0xEC, 0);
    assert_eq!(a.next_deadline(), None);
}

#[test]
fn odd_accesses_are_safe_and_counted() {
    let mut a = apic();
    assert_eq!(a.read(reg::ID + 3, 1, 0), 2);
    assert_eq!(a.read(reg::VERSION + 2, 2, 0), 5);
    assert_eq!(a.read(reg::ID + 2, 4, 0), 0);
    assert_eq!(a.read(0x3F0, 4, 0), 0);
    assert_eq!(a.read(0x1000, 4, 0), 0);
    assert_eq!(a.stats().bad_reads, 3);
    a.write(reg::TPR + 1, 4, 0xFF, 0);
    a.write(reg::TPR, 2, 0xFF, 0);
    a.write(reg::ID, 4, 0xFF << 24, 0);
    a.write(reg::VERSION, 4, 0, 0);
    assert_eq!(a.stats().bad_writes, 4);
    assert_eq!(a.tpr(), 0);
    assert_eq!(a.id(), 2);
}

#[test]
fn apic_base_msr() {
    let mut a = apic();
    assert!(!a.write_apic_base_msr(0xFEE0_0C00)); // x2APIC
    assert!(!a.write_apic_base_msr(0xFED0_0800)); // moved
    assert!(a.write_apic_base_msr(0xFEE0_0000));
    assert!(!a.hardware_enabled());
    assert_eq!(a.apic_base_msr(), 0xFEE0_0100); // BSP kept
    assert_eq!(a.read(reg::SVR, 4, 0), 0xFF);
    assert!(a.write_apic_base_msr(0xFEE0_0800));
    assert!(a.hardware_enabled());
}

#[test]
fn page_offset_and_deadline_conversion() {
    let mut a = apic();
    assert_eq!(a.page_offset(0xFEE0_0300), Some(0x300));
    assert_eq!(a.page_offset(0xFEE0_1000), None);
    assert_eq!(a.page_offset(0xFEDF_FFFF), None);
    a.write_apic_base_msr(0xFEE0_0000);
    assert_eq!(a.page_offset(0xFEE0_0300), None);
    // 2 GHz TSC: 3000 cycles ahead = 1500 ns.
    assert_eq!(Deadline::Tsc(13_000).to_nanos(100, 10_000, 2_000_000_000), 1_600);
    assert_eq!(Deadline::Tsc(5).to_nanos(100, 10_000, 2_000_000_000), 100);
    assert_eq!(Deadline::Nanos(7).to_nanos(100, 0, 1), 7);
}
