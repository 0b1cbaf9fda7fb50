//! A [`Vcpu`] that replays scripted exits, for testing exit loops and
//! device models without a VMCB. Fixed capacity, no allocation.

use super::{ControlRegisters, Event, Gpr, GuestGprs, InjectError, Vcpu, VcpuExit, RFLAGS_IF};

/// Most exits a script holds, and most injections recorded.
pub const FAKE_CAPACITY: usize = 32;

/// What the fake can report from [`Vcpu::run`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FakeError {
    /// Every scripted exit has been returned.
    ScriptExhausted,
}

/// A scripted vCPU.
#[derive(Clone, Debug)]
pub struct FakeVcpu {
    /// GPRs.
    pub gprs: GuestGprs,
    /// RIP.
    pub rip: u64,
    /// RFLAGS.
    pub rflags: u64,
    /// Control registers.
    pub control: ControlRegisters,
    /// Whether an interrupt window has been requested and not yet given.
    pub window_requested: bool,
    script: [Option<VcpuExit>; FAKE_CAPACITY],
    script_len: usize,
    next: usize,
    injected: [Option<Event>; FAKE_CAPACITY],
    injected_len: usize,
    pending: Option<Event>,
    last: Option<VcpuExit>,
}

impl Default for FakeVcpu {
    fn default() -> Self {
        Self::new()
    }
}

impl FakeVcpu {
    /// A vCPU with zeroed registers (RFLAGS = 0x2) and an empty script.
    pub const fn new() -> Self {
        Self {
            gprs: GuestGprs([0; 16]),
            rip: 0,
            rflags: 0x2,
            control: ControlRegisters { cr0: 0, cr2: 0, cr3: 0, cr4: 0, efer: 0 },
            window_requested: false,
            script: [None; FAKE_CAPACITY],
            script_len: 0,
            next: 0,
            injected: [None; FAKE_CAPACITY],
            injected_len: 0,
            pending: None,
            last: None,
        }
    }

    /// Appends an exit to the script; returns `false` when full.
    pub fn push_exit(&mut self, exit: VcpuExit) -> bool {
        if self.script_len == FAKE_CAPACITY {
            return false;
        }
        self.script[self.script_len] = Some(exit);
        self.script_len += 1;
        true
    }

    /// Events delivered so far (an injected event counts as delivered on
    /// the run after it was queued).
    pub fn delivered(&self) -> impl Iterator<Item = Event> + '_ {
        self.injected[..self.injected_len].iter().flatten().copied()
    }
}

impl Vcpu for FakeVcpu {
    type Error = FakeError;

    fn run(&mut self) -> Result<VcpuExit, FakeError> {
        if let Some(e) = self.pending.take() {
            if self.injected_len < FAKE_CAPACITY {
                self.injected[self.injected_len] = Some(e);
                self.injected_len += 1;
            }
        }
        let exit = match self.script.get(self.next).copied().flatten() {
            Some(e) if self.next < self.script_len => e,
            _ => return Err(FakeError::ScriptExhausted),
        };
        self.next += 1;
        if exit == VcpuExit::InterruptWindow {
            self.window_requested = false;
        }
        self.last = Some(exit);
        Ok(exit)
    }

    fn exit_reason(&self) -> Option<VcpuExit> {
        self.last
    }

    fn gpr(&self, r: Gpr) -> u64 {
        self.gprs.get(r)
    }

    fn set_gpr(&mut self, r: Gpr, value: u64) {
        self.gprs.set(r, value);
    }

    fn rip(&self) -> u64 {
        self.rip
    }

    fn set_rip(&mut self, rip: u64) {
        self.rip = rip;
    }

    fn rflags(&self) -> u64 {
        self.rflags
    }

    fn set_rflags(&mut self, rflags: u64) {
        self.rflags = rflags;
    }

    fn control_registers(&self) -> ControlRegisters {
        self.control
    }

    fn inject_event(&mut self, event: Event) -> Result<(), InjectError> {
        if self.pending.is_some() {
            return Err(InjectError::EventPending);
        }
        crate::EventInjection::try_from(event).map_err(InjectError::Invalid)?;
        if matches!(event, Event::ExternalInterrupt(_)) && !self.interrupts_open() {
            return Err(InjectError::InterruptsMasked);
        }
        self.pending = Some(event);
        Ok(())
    }

    fn interrupts_open(&self) -> bool {
        self.rflags & RFLAGS_IF != 0
    }

    fn request_interrupt_window(&mut self) {
        self.window_requested = true;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A tiny exit loop of the kind the vcpu service will have: the fake
    /// lets it be tested without any VMCB.
    fn step(v: &mut impl Vcpu) -> Option<VcpuExit> {
        let exit = v.run().ok()?;
        match exit {
            VcpuExit::Cpuid { len, .. } => {
                v.set_gpr(Gpr::Rax, 0);
                v.skip_instruction(len);
            }
            VcpuExit::Halt { len } => v.skip_instruction(len),
            VcpuExit::PortIo(io) => v.set_rip(io.next_rip),
            VcpuExit::InjectException(e) => v.inject_event(e).ok()?,
            _ => {}
        }
        Some(exit)
    }

    #[test]
    fn scripted_exits_drive_a_loop() {
        let mut v = FakeVcpu::new();
        v.rip = 0x1000;
        v.push_exit(VcpuExit::Cpuid { leaf: 0, subleaf: 0, len: 2 });
        v.push_exit(VcpuExit::Halt { len: 1 });
        v.push_exit(VcpuExit::InjectException(Event::Exception { vector: 6, error_code: None }));
        v.push_exit(VcpuExit::HostEvent);
        while step(&mut v).is_some() {}
        assert_eq!(v.rip, 0x1003);
        assert_eq!(v.delivered().collect::<std::vec::Vec<_>>(), [Event::Exception { vector: 6, error_code: None }]);
        assert_eq!(v.run(), Err(FakeError::ScriptExhausted));
    }

    #[test]
    fn fake_enforces_injection_rules() {
        let mut v = FakeVcpu::new();
        assert_eq!(v.inject_event(Event::ExternalInterrupt(0x40)), Err(InjectError::InterruptsMasked));
        v.request_interrupt_window();
        assert!(v.window_requested);
        v.push_exit(VcpuExit::InterruptWindow);
        v.run().unwrap();
        assert!(!v.window_requested);
        v.rflags |= RFLAGS_IF;
        v.inject_event(Event::ExternalInterrupt(0x40)).unwrap();
        assert_eq!(v.inject_event(Event::Nmi), Err(InjectError::EventPending));
        for _ in 0..FAKE_CAPACITY {
            v.push_exit(VcpuExit::HostEvent);
        }
        assert!(!v.push_exit(VcpuExit::HostEvent));
    }
}
