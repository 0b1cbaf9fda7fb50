//! Arithmetic flags of ADD, SUB, AND, OR and XOR.

use crate::state::*;

/// A read-modify-write operation on memory.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AluOp {
    /// `add`.
    Add,
    /// `sub`.
    Sub,
    /// `and`.
    And,
    /// `or`.
    Or,
    /// `xor`.
    Xor,
}

/// `dst op src` over `bits` bits (8, 16, 32 or 64): the result and the
/// new arithmetic flags (AF is left clear for the logical operations,
/// where it is architecturally undefined).
pub fn alu(op: AluOp, dst: u64, src: u64, bits: u32) -> (u64, u64) {
    let mask = if bits == 64 { u64::MAX } else { (1u64 << bits) - 1 };
    let sign = 1u64 << (bits - 1);
    let (a, b) = (dst & mask, src & mask);
    let (res, cf, of, af) = match op {
        AluOp::Add => {
            let wide = u128::from(a) + u128::from(b);
            let r = (wide as u64) & mask;
            (r, wide >> bits != 0, (a ^ r) & (b ^ r) & sign != 0, (a ^ b ^ r) & 0x10 != 0)
        }
        AluOp::Sub => {
            let r = a.wrapping_sub(b) & mask;
            (r, a < b, (a ^ b) & (a ^ r) & sign != 0, (a ^ b ^ r) & 0x10 != 0)
        }
        AluOp::And => (a & b, false, false, false),
        AluOp::Or => (a | b, false, false, false),
        AluOp::Xor => (a ^ b, false, false, false),
    };
    let mut f = 0;
    let mut set = |cond: bool, flag: u64| {
        if cond {
            f |= flag;
        }
    };
    set(cf, RFLAGS_CF);
    set((res as u8).count_ones() & 1 == 0, RFLAGS_PF);
    set(af, RFLAGS_AF);
    set(res == 0, RFLAGS_ZF);
    set(res & sign != 0, RFLAGS_SF);
    set(of, RFLAGS_OF);
    (res, f)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn add_flags() {
        assert_eq!(alu(AluOp::Add, 0x7f, 1, 8), (0x80, RFLAGS_SF | RFLAGS_OF | RFLAGS_AF));
        assert_eq!(alu(AluOp::Add, 0xff, 1, 8), (0, RFLAGS_CF | RFLAGS_ZF | RFLAGS_PF | RFLAGS_AF));
        assert_eq!(alu(AluOp::Add, u64::MAX, 1, 64), (0, RFLAGS_CF | RFLAGS_ZF | RFLAGS_PF | RFLAGS_AF));
        assert_eq!(alu(AluOp::Add, 0x1_0000, 0x2, 16), (0x2, 0));
    }

    #[test]
    fn sub_flags() {
        assert_eq!(alu(AluOp::Sub, 0, 1, 8), (0xff, RFLAGS_CF | RFLAGS_SF | RFLAGS_AF | RFLAGS_PF));
        assert_eq!(alu(AluOp::Sub, 0x8000_0000, 1, 32), (0x7fff_ffff, RFLAGS_OF | RFLAGS_AF | RFLAGS_PF));
        assert_eq!(alu(AluOp::Sub, 5, 5, 64), (0, RFLAGS_ZF | RFLAGS_PF));
    }

    #[test]
    fn logical_flags() {
        assert_eq!(alu(AluOp::And, 0xf0, 0x0f, 8), (0, RFLAGS_ZF | RFLAGS_PF));
        assert_eq!(alu(AluOp::Or, 0x8000, 0x1, 16), (0x8001, RFLAGS_SF));
        assert_eq!(alu(AluOp::Xor, 0b11, 0b01, 32), (0b10, 0));
    }
}
