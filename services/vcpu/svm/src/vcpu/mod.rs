//! The backend-neutral vCPU interface.
//!
//! [`Vcpu`] is what the vcpu service's exit loop drives: run until an exit,
//! read and write registers, inject an event. [`svm::SvmVcpu`] implements it
//! over a VMCB and a [`VmRunner`]; a VMX backend will implement it over a
//! VMCS. (The trait lives in this crate until that second backend exists;
//! it names no SVM type except [`IoAccess`], whose fields are generic.)
//! `fake::FakeVcpu` (feature `fake`, and in tests) replays scripted exits for tests of the exit loop.

#[cfg(any(test, feature = "fake"))]
pub mod fake;
pub mod svm;

use core::fmt;

pub use svm::{SvmVcpu, SvmVcpuError, VmRunner};

use crate::event::{EventError, EventInjection, EventType};
use crate::exit::{IoAccess, NpfAccess};
use crate::GuestPhysAddr;

/// A general-purpose register, numbered as in instruction encodings.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[allow(missing_docs, reason = "register names")]
pub enum Gpr {
    Rax = 0,
    Rcx,
    Rdx,
    Rbx,
    Rsp,
    Rbp,
    Rsi,
    Rdi,
    R8,
    R9,
    R10,
    R11,
    R12,
    R13,
    R14,
    R15,
}

impl Gpr {
    /// All sixteen, in encoding order.
    pub const ALL: [Gpr; 16] = [
        Gpr::Rax,
        Gpr::Rcx,
        Gpr::Rdx,
        Gpr::Rbx,
        Gpr::Rsp,
        Gpr::Rbp,
        Gpr::Rsi,
        Gpr::Rdi,
        Gpr::R8,
        Gpr::R9,
        Gpr::R10,
        Gpr::R11,
        Gpr::R12,
        Gpr::R13,
        Gpr::R14,
        Gpr::R15,
    ];
}

/// The sixteen GPRs, indexed by [`Gpr`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct GuestGprs(pub [u64; 16]);

impl GuestGprs {
    /// Reads one register.
    pub fn get(&self, r: Gpr) -> u64 {
        self.0[r as usize]
    }
    /// Writes one register.
    pub fn set(&mut self, r: Gpr, v: u64) {
        self.0[r as usize] = v;
    }
}

/// Control state the exit handlers need.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ControlRegisters {
    /// CR0.
    pub cr0: u64,
    /// CR2.
    pub cr2: u64,
    /// CR3.
    pub cr3: u64,
    /// CR4.
    pub cr4: u64,
    /// EFER as the guest sees it (without SVME).
    pub efer: u64,
}

/// An event to deliver to the guest.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Event {
    /// A maskable interrupt (from the virtual APIC).
    ExternalInterrupt(u8),
    /// An NMI.
    Nmi,
    /// An exception, with its error code when the vector has one.
    Exception {
        /// Vector 0–31.
        vector: u8,
        /// Error code.
        error_code: Option<u32>,
    },
    /// INTn re-delivery.
    SoftwareInterrupt(u8),
}

impl TryFrom<Event> for EventInjection {
    type Error = EventError;
    fn try_from(e: Event) -> Result<Self, EventError> {
        match e {
            Event::ExternalInterrupt(v) => EventInjection::external_interrupt(v),
            Event::Nmi => Ok(EventInjection::nmi()),
            Event::Exception { vector, error_code } => EventInjection::exception(vector, error_code),
            Event::SoftwareInterrupt(v) => Ok(EventInjection::software_interrupt(v)),
        }
    }
}

impl From<EventInjection> for Event {
    fn from(e: EventInjection) -> Self {
        match e.event_type() {
            EventType::ExternalInterrupt => Event::ExternalInterrupt(e.vector()),
            EventType::Nmi => Event::Nmi,
            EventType::Exception => Event::Exception { vector: e.vector(), error_code: e.error_code() },
            EventType::SoftwareInterrupt => Event::SoftwareInterrupt(e.vector()),
        }
    }
}

/// A guest access to guest-physical memory that the nested/extended page
/// table did not allow.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct GuestMemoryFault {
    /// The guest-physical address.
    pub gpa: GuestPhysAddr,
    /// Read, write or fetch.
    pub access: NpfAccess,
    /// A mapping existed but did not allow the access.
    pub present: bool,
    /// The fault hit the CPU's walk of the guest's own page tables.
    pub guest_page_walk: bool,
}

/// Why a vCPU stopped, in backend-neutral terms. `len` is the length of
/// the instruction to step over once the exit is handled (without
/// nrip-save, the canonical encoding's length; see `docs/hypervisor.md`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum VcpuExit {
    /// The exit was for the host (interrupt, NMI, SMI, INIT): run again.
    HostEvent,
    /// The guest can take an interrupt now (window requested earlier).
    InterruptWindow,
    /// CPUID with EAX = `leaf`, ECX = `subleaf`.
    Cpuid {
        /// EAX.
        leaf: u32,
        /// ECX.
        subleaf: u32,
        /// Instruction length.
        len: u8,
    },
    /// RDMSR of ECX = `msr`.
    MsrRead {
        /// The MSR.
        msr: u32,
        /// Instruction length.
        len: u8,
    },
    /// WRMSR of EDX:EAX = `value` to ECX = `msr`.
    MsrWrite {
        /// The MSR.
        msr: u32,
        /// The value.
        value: u64,
        /// Instruction length.
        len: u8,
    },
    /// XSETBV of EDX:EAX to the XCR numbered ECX.
    Xsetbv {
        /// ECX.
        xcr: u32,
        /// EDX:EAX.
        value: u64,
        /// Instruction length.
        len: u8,
    },
    /// IN/OUT/INS/OUTS; RIP afterwards is `next_rip`.
    PortIo(IoAccess),
    /// A nested page fault (RAM not present here, or MMIO).
    GuestMemoryFault(GuestMemoryFault),
    /// HLT.
    Halt {
        /// Instruction length.
        len: u8,
    },
    /// VMMCALL/VMCALL.
    Hypercall {
        /// Instruction length.
        len: u8,
    },
    /// An instruction completed by doing nothing (INVD, WBINVD).
    Skip {
        /// Instruction length.
        len: u8,
    },
    /// The backend decided the guest takes this exception (reflected #DB
    /// or #AC, #UD for hidden instructions, #GP for RDPMC).
    InjectException(Event),
    /// The guest triple-faulted.
    Shutdown,
    /// Stop the VM and report: a Sinter bug or a host problem.
    Fatal {
        /// What went wrong.
        why: &'static str,
        /// The backend's raw exit code.
        code: u64,
    },
}

/// Why an injection was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum InjectError {
    /// An event is already waiting (e.g. one whose delivery an exit
    /// interrupted): inject after the next run.
    EventPending,
    /// The guest cannot take a maskable interrupt now (IF=0 or interrupt
    /// shadow): request an interrupt window instead.
    InterruptsMasked,
    /// The event itself is malformed.
    Invalid(EventError),
}

impl fmt::Display for InjectError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::EventPending => write!(f, "an event is already pending"),
            Self::InterruptsMasked => write!(f, "guest interrupts are masked"),
            Self::Invalid(e) => write!(f, "invalid event: {e}"),
        }
    }
}

/// RFLAGS.IF.
pub const RFLAGS_IF: u64 = 1 << 9;

/// One virtual CPU, whatever the hardware backend.
pub trait Vcpu {
    /// What can go wrong entering or leaving the guest.
    type Error: fmt::Debug;

    /// Runs the guest until its next exit.
    fn run(&mut self) -> Result<VcpuExit, Self::Error>;
    /// The exit the last [`Vcpu::run`] returned.
    fn exit_reason(&self) -> Option<VcpuExit>;

    /// Reads a GPR.
    fn gpr(&self, r: Gpr) -> u64;
    /// Writes a GPR.
    fn set_gpr(&mut self, r: Gpr, value: u64);
    /// RIP.
    fn rip(&self) -> u64;
    /// Sets RIP.
    fn set_rip(&mut self, rip: u64);
    /// RFLAGS.
    fn rflags(&self) -> u64;
    /// Sets RFLAGS.
    fn set_rflags(&mut self, rflags: u64);
    /// CR0/2/3/4 and EFER.
    fn control_registers(&self) -> ControlRegisters;

    /// Queues `event` for delivery on the next run.
    fn inject_event(&mut self, event: Event) -> Result<(), InjectError>;
    /// Whether a maskable interrupt could be injected now.
    fn interrupts_open(&self) -> bool;
    /// Asks for an [`VcpuExit::InterruptWindow`] exit as soon as the guest
    /// can take a maskable interrupt.
    fn request_interrupt_window(&mut self);

    /// Steps over the instruction at RIP (`len` bytes), after an exit that
    /// completed it.
    fn skip_instruction(&mut self, len: u8) {
        let rip = self.rip().wrapping_add(u64::from(len));
        self.set_rip(rip);
    }
}
