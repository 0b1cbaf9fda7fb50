//! Event injection: the `EVENTINJ` field (VMCB 0x0A8) and `EXITINTINFO`
//! (0x088), which share one format (APM vol. 2 §15.20):
//!
//! | bits  | field                                   |
//! |-------|-----------------------------------------|
//! | 7:0   | vector                                  |
//! | 10:8  | type: 0 INTR, 2 NMI, 3 exception, 4 INTn |
//! | 11    | EV: the error code is valid             |
//! | 31    | V: the whole field is valid             |
//! | 63:32 | error code                              |
//!
//! Constructors check what the CPU does not: that an exception carries an
//! error code exactly when its vector pushes one, and that an NMI is not
//! disguised as exception 2.

use core::fmt;

const VALID: u64 = 1 << 31;
const ERROR_VALID: u64 = 1 << 11;
const TYPE_SHIFT: u32 = 8;

/// Exception vectors by name.
pub mod vector {
    /// #DE.
    pub const DIVIDE_ERROR: u8 = 0;
    /// #DB.
    pub const DEBUG: u8 = 1;
    /// NMI.
    pub const NMI: u8 = 2;
    /// #BP.
    pub const BREAKPOINT: u8 = 3;
    /// #UD.
    pub const INVALID_OPCODE: u8 = 6;
    /// #DF.
    pub const DOUBLE_FAULT: u8 = 8;
    /// #GP.
    pub const GENERAL_PROTECTION: u8 = 13;
    /// #PF.
    pub const PAGE_FAULT: u8 = 14;
    /// #AC.
    pub const ALIGNMENT_CHECK: u8 = 17;
    /// #MC.
    pub const MACHINE_CHECK: u8 = 18;
}

/// Whether exception `vector` pushes an error code (#DF, #TS, #NP, #SS,
/// #GP, #PF, #AC, #CP, #VC, #SX).
pub const fn pushes_error_code(vector: u8) -> bool {
    matches!(vector, 8 | 10 | 11 | 12 | 13 | 14 | 17 | 21 | 29 | 30)
}

/// The TYPE field.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum EventType {
    /// External (maskable) interrupt.
    ExternalInterrupt = 0,
    /// Non-maskable interrupt.
    Nmi = 2,
    /// Exception (fault or trap).
    Exception = 3,
    /// Software interrupt (INTn).
    SoftwareInterrupt = 4,
}

/// A valid `EVENTINJ`/`EXITINTINFO` value.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct EventInjection(u64);

/// Why an event cannot be injected as asked.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EventError {
    /// Exception vectors are 0–31.
    NotAnExceptionVector(u8),
    /// Vector 2 is injected as [`EventType::Nmi`], never as an exception.
    NmiAsException,
    /// This vector pushes an error code and none was given.
    MissingErrorCode(u8),
    /// This vector pushes no error code and one was given.
    UnexpectedErrorCode(u8),
    /// External interrupts use vectors 16–255 (the APIC's range).
    ReservedInterruptVector(u8),
    /// A raw value with TYPE 1, 5, 6 or 7.
    ReservedType(u8),
}

impl fmt::Display for EventError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NotAnExceptionVector(v) => write!(f, "vector {v} is not an exception"),
            Self::NmiAsException => write!(f, "NMI must be injected with the NMI type"),
            Self::MissingErrorCode(v) => write!(f, "exception {v} needs an error code"),
            Self::UnexpectedErrorCode(v) => write!(f, "exception {v} takes no error code"),
            Self::ReservedInterruptVector(v) => write!(f, "interrupt vector {v} is reserved"),
            Self::ReservedType(t) => write!(f, "event type {t} is reserved"),
        }
    }
}

impl EventInjection {
    /// An exception; `error_code` must be `Some` exactly for the vectors
    /// that push one ([`pushes_error_code`]).
    pub fn exception(vector: u8, error_code: Option<u32>) -> Result<Self, EventError> {
        if vector >= 32 {
            return Err(EventError::NotAnExceptionVector(vector));
        }
        if vector == vector::NMI {
            return Err(EventError::NmiAsException);
        }
        match (pushes_error_code(vector), error_code) {
            (true, None) => Err(EventError::MissingErrorCode(vector)),
            (false, Some(_)) => Err(EventError::UnexpectedErrorCode(vector)),
            (_, code) => Ok(Self::encode(EventType::Exception, vector, code)),
        }
    }

    /// A maskable external interrupt with `vector` (16–255).
    pub fn external_interrupt(vector: u8) -> Result<Self, EventError> {
        if vector < 16 {
            return Err(EventError::ReservedInterruptVector(vector));
        }
        Ok(Self::encode(EventType::ExternalInterrupt, vector, None))
    }

    /// A non-maskable interrupt.
    pub fn nmi() -> Self {
        Self::encode(EventType::Nmi, vector::NMI, None)
    }

    /// A software interrupt (`INT vector`).
    pub fn software_interrupt(vector: u8) -> Self {
        Self::encode(EventType::SoftwareInterrupt, vector, None)
    }

    /// #UD, the answer to instructions the guest's CPU does not have.
    pub const INVALID_OPCODE: Self = Self::encode(EventType::Exception, vector::INVALID_OPCODE, None);
    /// #GP(0).
    pub const GENERAL_PROTECTION_0: Self = Self::encode(EventType::Exception, vector::GENERAL_PROTECTION, Some(0));

    const fn encode(kind: EventType, vector: u8, error_code: Option<u32>) -> Self {
        let mut raw = VALID | ((kind as u64) << TYPE_SHIFT) | vector as u64;
        if let Some(code) = error_code {
            raw |= ERROR_VALID | ((code as u64) << 32);
        }
        Self(raw)
    }

    /// Decodes an `EXITINTINFO` (or `EVENTINJ`) value: `Ok(None)` when V is
    /// clear. Reserved types are an error, as the CPU never writes them.
    pub fn from_raw(raw: u64) -> Result<Option<Self>, EventError> {
        if raw & VALID == 0 {
            return Ok(None);
        }
        let kind = ((raw >> TYPE_SHIFT) & 7) as u8;
        if !matches!(kind, 0 | 2 | 3 | 4) {
            return Err(EventError::ReservedType(kind));
        }
        // Keep only architectural bits.
        let keep = 0xff | (7 << TYPE_SHIFT) | ERROR_VALID | VALID | (0xffff_ffff << 32);
        let mut raw = raw & keep;
        if raw & ERROR_VALID == 0 {
            raw &= !(0xffff_ffff << 32);
        }
        Ok(Some(Self(raw)))
    }

    /// The value to write into `EVENTINJ`.
    pub const fn raw(self) -> u64 {
        self.0
    }

    /// The vector.
    pub const fn vector(self) -> u8 {
        self.0 as u8
    }

    /// The type.
    pub fn event_type(self) -> EventType {
        match (self.0 >> TYPE_SHIFT) & 7 {
            0 => EventType::ExternalInterrupt,
            2 => EventType::Nmi,
            3 => EventType::Exception,
            _ => EventType::SoftwareInterrupt,
        }
    }

    /// The error code, if EV is set.
    pub const fn error_code(self) -> Option<u32> {
        if self.0 & ERROR_VALID != 0 {
            Some((self.0 >> 32) as u32)
        } else {
            None
        }
    }
}

impl fmt::Debug for EventInjection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EventInjection")
            .field("type", &self.event_type())
            .field("vector", &self.vector())
            .field("error_code", &self.error_code())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn encodes_apm_layout() {
        let gp = EventInjection::exception(13, Some(0x18)).unwrap();
        assert_eq!(gp.raw(), 0x0000_0018_8000_0b0d);
        let ud = EventInjection::exception(6, None).unwrap();
        assert_eq!(ud.raw(), 0x8000_0306);
        assert_eq!(EventInjection::nmi().raw(), 0x8000_0202);
        assert_eq!(EventInjection::external_interrupt(0x30).unwrap().raw(), 0x8000_0030);
        assert_eq!(EventInjection::software_interrupt(0x80).raw(), 0x8000_0480);
        assert_eq!(Ok(EventInjection::INVALID_OPCODE), EventInjection::exception(6, None));
        assert_eq!(Ok(EventInjection::GENERAL_PROTECTION_0), EventInjection::exception(13, Some(0)));
    }

    #[test]
    fn refuses_wrong_injections() {
        assert_eq!(EventInjection::exception(2, None), Err(EventError::NmiAsException));
        assert_eq!(EventInjection::exception(14, None), Err(EventError::MissingErrorCode(14)));
        assert_eq!(EventInjection::exception(6, Some(0)), Err(EventError::UnexpectedErrorCode(6)));
        assert_eq!(EventInjection::exception(32, None), Err(EventError::NotAnExceptionVector(32)));
        assert_eq!(EventInjection::external_interrupt(15), Err(EventError::ReservedInterruptVector(15)));
    }

    #[test]
    fn decodes_exit_int_info() {
        assert_eq!(EventInjection::from_raw(0), Ok(None));
        assert_eq!(EventInjection::from_raw(0x8000_0100), Err(EventError::ReservedType(1)));
        let pf = EventInjection::from_raw(0x0000_0002_8000_0b0e).unwrap().unwrap();
        assert_eq!(pf.event_type(), EventType::Exception);
        assert_eq!(pf.vector(), 14);
        assert_eq!(pf.error_code(), Some(2));
        // Reserved bits 30:12 are dropped; an error code without EV is dropped.
        let irq = EventInjection::from_raw(0xffff_ffff_ffff_f030 & !(1 << 11) & !(7 << 8)).unwrap().unwrap();
        assert_eq!(irq.raw(), 0x8000_0030);
    }

    proptest! {
        #[test]
        fn exception_round_trips(vector in 0u8..32, code in any::<u32>()) {
            let code = pushes_error_code(vector).then_some(code);
            if let Ok(e) = EventInjection::exception(vector, code) {
                let back = EventInjection::from_raw(e.raw()).unwrap().unwrap();
                prop_assert_eq!(back, e);
                prop_assert_eq!(back.vector(), vector);
                prop_assert_eq!(back.error_code(), code);
                prop_assert_eq!(back.event_type(), EventType::Exception);
            } else {
                prop_assert_eq!(vector, 2);
            }
        }

        #[test]
        fn from_raw_never_panics(raw in any::<u64>()) {
            let _ = EventInjection::from_raw(raw);
        }
    }
}
