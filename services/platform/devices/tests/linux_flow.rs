//! The devices wired together the way the vCPU exit loop will use them,
//! through the public API only: a level-triggered SCI and an edge UART
//! interrupt travel I/O APIC → resolver → local APIC → injection → EOI →
//! I/O APIC; IPIs from one vCPU's ICR reach the others; the timers tell
//! the caller when to come back.

use sinter_guest_acpi::{GuestMachine, GuestMemoryRange, IsaSerial, NumaDistances, PmRegisters, VcpuPlacement};
use sinter_guest_devices::lapic::reg;
use sinter_guest_devices::{
    resolve_destinations, ApicTarget, Deadline, IoOutcome, LapicConfig, LapicEffect, LocalApic, PlatformBus, Received,
    SerialSink,
};

struct Console(Vec<u8>);
impl SerialSink for Console {
    fn write_byte(&mut self, byte: u8) {
        self.0.push(byte);
    }
}

fn machine(vcpus: u8) -> GuestMachine {
    GuestMachine {
        vcpus: (0..vcpus).map(|i| VcpuPlacement { apic_id: i, numa_node: 0 }).collect(),
        memory: vec![GuestMemoryRange { base: 0, len: 1 << 30, numa_node: 0 }],
        numa_distances: NumaDistances::default(),
        ioapic: sinter_guest_acpi::IoApic::default(),
        uart: Some(IsaSerial::COM1),
        pm: PmRegisters::SINTER,
        legacy_pic: true,
        table_address: 0xE_0000,
    }
}

struct Machine {
    bus: PlatformBus<Console>,
    cpus: Vec<LocalApic>,
}

impl Machine {
    fn new(n: u8) -> Self {
        let bus = PlatformBus::new(&machine(n), Console(Vec::new()), 0, 0);
        let cpus = (0..n).map(|i| LocalApic::new(i, i == 0, LapicConfig::default())).collect();
        Self { bus, cpus }
    }

    fn targets(&self) -> Vec<ApicTarget> {
        self.cpus.iter().map(LocalApic::target).collect()
    }

    fn route(&mut self, out: &IoOutcome) {
        let targets = self.targets();
        for msg in out.interrupts.iter() {
            for i in resolve_destinations(msg, None, &targets) {
                assert_eq!(self.cpus[i].receive(msg), Received::Queued);
            }
        }
    }

    /// What the exit loop does before VMRUN: inject the highest pending vector.
    fn inject(&mut self, cpu: usize) -> Option<u8> {
        let v = self.cpus[cpu].pending_interrupt()?;
        assert!(self.cpus[cpu].ack(v));
        Some(v)
    }

    /// The guest's EOI write, with the level EOI broadcast.
    fn guest_eoi(&mut self, cpu: usize, now: u64) {
        if let LapicEffect::Eoi { vector, level_triggered: true } = self.cpus[cpu].write(reg::EOI, 4, 0, now) {
            let out = self.bus.eoi(vector, now);
            self.route(&out);
        }
    }

    fn ioapic_entry(&mut self, pin: u8, low: u32, dest: u8) {
        self.bus.mmio_write(0xFEC0_0000, 4, u64::from(0x11 + 2 * pin), 0);
        self.bus.mmio_write(0xFEC0_0010, 4, u64::from(dest) << 24, 0);
        self.bus.mmio_write(0xFEC0_0000, 4, u64::from(0x10 + 2 * pin), 0);
        let out = self.bus.mmio_write(0xFEC0_0010, 4, u64::from(low), 0);
        self.route(&out);
    }
}

#[test]
fn level_sci_round_trip_with_eoi_broadcast() {
    let mut m = Machine::new(2);
    for c in &mut m.cpus {
        c.write(reg::SVR, 4, 0x1FF, 0);
    }
    m.ioapic_entry(9, 0x8000 | 0x49, 1);
    m.bus.port_write(0x602, 2, 1, 0); // TMR_EN
    let due = m.bus.next_deadline().expect("PM timer overflow deadline");
    let out = m.bus.tick(due);
    m.route(&out);
    assert_eq!(m.inject(1), Some(0x49));
    assert_eq!(m.inject(0), None);
    // EOI before the guest cleared TMR_STS: the still-asserted line comes back.
    m.guest_eoi(1, due);
    assert_eq!(m.inject(1), Some(0x49));
    // The handler clears the status, then EOIs: quiet.
    m.bus.port_write(0x600, 2, 1, due);
    m.guest_eoi(1, due);
    assert_eq!(m.inject(1), None);
}

#[test]
fn uart_console_interrupt_driven_output() {
    let mut m = Machine::new(1);
    m.cpus[0].write(reg::SVR, 4, 0x1FF, 0);
    m.ioapic_entry(4, 0x24, 0);
    // The tty layer's start_tx: IER.THRI.
    let out = m.bus.port_write(0x3F9, 1, 0x02, 0);
    m.route(&out);
    let mut sent = 0;
    let text = b"Debian GNU/Linux 12 sinter ttyS0\n";
    while let Some(v) = m.inject(0) {
        assert_eq!(v, 0x24);
        // serial8250_handle_irq: IIR, LSR, then tx_chars while THRE.
        let iir = m.bus.port_read(0x3FA, 1, 0);
        m.route(&iir);
        let lsr = m.bus.port_read(0x3FD, 1, 0).value;
        assert_eq!(lsr & 0x20, 0x20);
        for _ in 0..16 {
            if sent == text.len() {
                break;
            }
            let out = m.bus.port_write(0x3F8, 1, u32::from(text[sent]), 0);
            m.route(&out);
            sent += 1;
        }
        if sent == text.len() {
            // __stop_tx.
            let out = m.bus.port_write(0x3F9, 1, 0x00, 0);
            m.route(&out);
        }
        m.cpus[0].write(reg::EOI, 4, 0, 0);
    }
    assert_eq!(m.bus.uart().unwrap().sink().0, text);
}

#[test]
fn smp_boot_ipis_and_fixed_broadcast() {
    let mut m = Machine::new(4);
    for c in &mut m.cpus {
        c.write(reg::SVR, 4, 0x1FF, 0);
    }
    let targets = m.targets();
    // wakeup_secondary_cpu_via_init for APIC ID 2: INIT assert, de-assert, SIPI.
    let bsp = &mut m.cpus[0];
    bsp.write(reg::ICR_HIGH, 4, 2 << 24, 0);
    let mut received = Vec::new();
    for icr in [0xC500u64, 0x8500, 0x0608] {
        let LapicEffect::Ipi(ipi) = m.cpus[0].write(reg::ICR_LOW, 4, icr, 0) else { panic!("no IPI") };
        for i in resolve_destinations(&ipi, Some(0), &targets) {
            received.push((i, m.cpus[i].receive(&ipi)));
        }
    }
    assert_eq!(received, [(2, Received::Init), (2, Received::Ignored), (2, Received::StartUp { vector: 8 })]);
    // A fixed IPI to all but self (e.g. a TLB shootdown vector).
    for c in &mut m.cpus {
        c.write(reg::SVR, 4, 0x1FF, 0);
    }
    let targets = m.targets();
    let LapicEffect::Ipi(ipi) = m.cpus[1].write(reg::ICR_LOW, 4, 0xC_40FB, 0) else { panic!("no IPI") };
    let dests: Vec<usize> = resolve_destinations(&ipi, Some(1), &targets).collect();
    assert_eq!(dests, [0, 2, 3]);
}

#[test]
fn lapic_timer_deadline_drives_the_host_timer() {
    let mut m = Machine::new(1);
    let c = &mut m.cpus[0];
    c.write(reg::SVR, 4, 0x1FF, 0);
    c.write(reg::TIMER_DIVIDE, 4, 0xB, 0);
    c.write(reg::LVT_TIMER, 4, 0xEC, 0);
    c.write(reg::TIMER_INITIAL, 4, 250_000, 1_000);
    let Some(Deadline::Nanos(due)) = c.next_deadline() else { panic!("timer not armed") };
    assert_eq!(due, 251_000);
    assert!(c.tick(due, 0));
    assert_eq!(c.pending_interrupt(), Some(0xEC));
}
