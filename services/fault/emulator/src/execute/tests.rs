//! One test per supported form. Encodings are hand-assembled; each test
//! states the instruction in Intel syntax and its expected length, and
//! checks the length against iced's own decode.

use std::vec::Vec;

use iced_x86::{Decoder, DecoderOptions};

use super::*;
use crate::bus::BusError;
use crate::state::*;
use crate::AluOp;

const RAX: usize = 0;
const RCX: usize = 1;
const RDX: usize = 2;
const RBX: usize = 3;
const RSI: usize = 6;
const RDI: usize = 7;
const R9: usize = 9;
const R10: usize = 10;
const R12: usize = 12;
const R13: usize = 13;

/// The device page the tests fault on.
const PAGE: u64 = 0xfee0_0000;
const RIP: u64 = 0xffff_ffff_8100_0000;

/// A bus with one register value per address and a log of accesses.
#[derive(Default)]
struct FakeBus {
    value: u64,
    log: Vec<(char, u64, AccessSize, u64)>,
    fail: Option<BusError>,
}

impl MmioBus for FakeBus {
    fn read(&mut self, gpa: u64, size: AccessSize) -> Result<u64, BusError> {
        if let Some(e) = self.fail {
            return Err(e);
        }
        // Return junk above the width to check the emulator masks it.
        self.log.push(('r', gpa, size, self.value));
        Ok(self.value | !size.mask())
    }
    fn write(&mut self, gpa: u64, size: AccessSize, value: u64) -> Result<(), BusError> {
        if let Some(e) = self.fail {
            return Err(e);
        }
        self.log.push(('w', gpa, size, value));
        self.value = value;
        Ok(())
    }
}

fn state() -> GuestCpuState {
    let mut s = GuestCpuState::new_long64(RIP);
    for (i, r) in s.gprs.iter_mut().enumerate() {
        *r = 0x1111_1111_1111_1111u64.wrapping_mul(i as u64 + 1);
    }
    s
}

fn iced_len(bytes: &[u8], mode: CpuMode) -> usize {
    Decoder::with_ip(mode.bitness(), bytes, RIP, DecoderOptions::NONE).decode().len()
}

/// Emulates `bytes` with the memory operand's base register (`base`)
/// pointing at `PAGE + off` and checks the length.
fn emulate(s: &mut GuestCpuState, bytes: &[u8], len: usize, gpa: u64, bus: &mut FakeBus) -> Emulated {
    assert_eq!(iced_len(bytes, s.mode), len, "iced disagrees on the length of {bytes:02x?}");
    let rip = s.rip;
    let e = emulate_mmio(s, bytes, gpa, bus).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(e.len as usize, len);
    assert_eq!(e.next_rip, rip + len as u64);
    assert_eq!(s.rip, e.next_rip);
    e
}

fn with_base(base: usize, off: u64) -> GuestCpuState {
    let mut s = state();
    s.gprs[base] = PAGE + off;
    s
}

#[test]
fn mov_load_32_zero_extends() {
    // mov eax, [rdi]
    let mut s = with_base(RDI, 0x30);
    let mut bus = FakeBus { value: 0x8765_4321, ..Default::default() };
    let e = emulate(&mut s, &[0x8b, 0x07], 2, PAGE + 0x30, &mut bus);
    assert_eq!(s.gprs[RAX], 0x8765_4321);
    assert_eq!(
        e.access,
        MmioAccess {
            gpa: PAGE + 0x30,
            size: AccessSize::Dword,
            kind: MmioAccessKind::Read,
            read: Some(0x8765_4321),
            written: None
        }
    );
}

#[test]
fn mov_store_32() {
    // mov [rdi], eax
    let mut s = with_base(RDI, 0xb0);
    let mut bus = FakeBus::default();
    emulate(&mut s, &[0x89, 0x07], 2, PAGE + 0xb0, &mut bus);
    assert_eq!(bus.log, [('w', PAGE + 0xb0, AccessSize::Dword, 0x1111_1111)]);
}

#[test]
fn mov_64_with_rex_w() {
    // mov rax, [rdi]
    let mut s = with_base(RDI, 0);
    let mut bus = FakeBus { value: 0x0123_4567_89ab_cdef, ..Default::default() };
    emulate(&mut s, &[0x48, 0x8b, 0x07], 3, PAGE, &mut bus);
    assert_eq!(s.gprs[RAX], 0x0123_4567_89ab_cdef);
    // mov r9, [r10]  (REX.WRB)
    let mut s = with_base(R10, 8);
    emulate(&mut s, &[0x4d, 0x8b, 0x0a], 3, PAGE + 8, &mut bus);
    assert_eq!(s.gprs[R9], 0x0123_4567_89ab_cdef);
}

#[test]
fn mov_store_extended_registers_with_disp8() {
    // mov [r10+0x10], r9d  (REX.RB)
    let mut s = with_base(R10, 0x100);
    let mut bus = FakeBus::default();
    emulate(&mut s, &[0x45, 0x89, 0x4a, 0x10], 4, PAGE + 0x110, &mut bus);
    assert_eq!(bus.log, [('w', PAGE + 0x110, AccessSize::Dword, 0xaaaa_aaaa)]);
}

#[test]
fn operand_size_prefix_16_bit() {
    // mov ax, [rsi]: upper 48 bits of RAX kept.
    let mut s = with_base(RSI, 0x20);
    let mut bus = FakeBus { value: 0xbeef, ..Default::default() };
    emulate(&mut s, &[0x66, 0x8b, 0x06], 3, PAGE + 0x20, &mut bus);
    assert_eq!(s.gprs[RAX], 0x1111_1111_1111_beef);
    // mov [rsi], ax
    emulate(&mut s, &[0x66, 0x89, 0x06], 3, PAGE + 0x20, &mut bus);
    assert_eq!(bus.log.last(), Some(&('w', PAGE + 0x20, AccessSize::Word, 0xbeef)));
}

#[test]
fn high_byte_registers() {
    let mut bus = FakeBus { value: 0x5a, ..Default::default() };
    // mov ah, [rbx]
    let mut s = with_base(RBX, 4);
    emulate(&mut s, &[0x8a, 0x23], 2, PAGE + 4, &mut bus);
    assert_eq!(s.gprs[RAX], 0x1111_1111_1111_5a11);
    // mov al, [rbx]
    emulate(&mut s, &[0x8a, 0x03], 2, PAGE + 4, &mut bus);
    assert_eq!(s.gprs[RAX], 0x1111_1111_1111_5a5a);
    // mov [rbx], bh  (reg 7 without REX is BH)
    let mut s = with_base(RBX, 4);
    s.gprs[RBX] = PAGE + 0x3c04; // BH = 0x3c, so the page offset is 0xc04
    emulate(&mut s, &[0x88, 0x3b], 2, PAGE + 0xc04, &mut bus);
    assert_eq!(bus.log.last(), Some(&('w', PAGE + 0xc04, AccessSize::Byte, 0x3c)));
    // mov [rbx], dil (same ModRM with a REX prefix is DIL)
    emulate(&mut s, &[0x40, 0x88, 0x3b], 3, PAGE + 0xc04, &mut bus);
    assert_eq!(bus.log.last(), Some(&('w', PAGE + 0xc04, AccessSize::Byte, 0x88)));
    // mov ch, [rbx]
    let mut s = with_base(RBX, 4);
    bus.value = 0xc3;
    emulate(&mut s, &[0x8a, 0x2b], 2, PAGE + 4, &mut bus);
    assert_eq!(s.gprs[RCX], 0x2222_2222_2222_c322);
}

#[test]
fn movzx_and_movsx() {
    let mut bus = FakeBus { value: 0xf0, ..Default::default() };
    let mut s = with_base(RDX, 0x10);
    // movzx eax, byte [rdx]
    emulate(&mut s, &[0x0f, 0xb6, 0x02], 3, PAGE + 0x10, &mut bus);
    assert_eq!(s.gprs[RAX], 0xf0);
    // movsx rax, byte [rdx]
    emulate(&mut s, &[0x48, 0x0f, 0xbe, 0x02], 4, PAGE + 0x10, &mut bus);
    assert_eq!(s.gprs[RAX], 0xffff_ffff_ffff_fff0);
    // movsx eax, byte [rdx]: sign-extended to 32, zero above.
    emulate(&mut s, &[0x0f, 0xbe, 0x02], 3, PAGE + 0x10, &mut bus);
    assert_eq!(s.gprs[RAX], 0xffff_fff0);
    bus.value = 0x8001;
    // movzx ecx, word [rdx]
    emulate(&mut s, &[0x0f, 0xb7, 0x0a], 3, PAGE + 0x10, &mut bus);
    assert_eq!(s.gprs[RCX], 0x8001);
    // movsx cx, byte [rdx]: 16-bit destination keeps upper bits.
    bus.value = 0x80;
    s.gprs[RCX] = 0xaaaa_aaaa_aaaa_aaaa;
    emulate(&mut s, &[0x66, 0x0f, 0xbe, 0x0a], 4, PAGE + 0x10, &mut bus);
    assert_eq!(s.gprs[RCX], 0xaaaa_aaaa_aaaa_ff80);
    // movsxd rax, dword [rdx]
    bus.value = 0x8000_0000;
    emulate(&mut s, &[0x48, 0x63, 0x02], 3, PAGE + 0x10, &mut bus);
    assert_eq!(s.gprs[RAX], 0xffff_ffff_8000_0000);
}

#[test]
fn mov_immediate_to_memory() {
    let mut bus = FakeBus::default();
    let mut s = with_base(RDI, 0x300);
    let g = PAGE + 0x300;
    // mov byte [rdi], 0xab
    emulate(&mut s, &[0xc6, 0x07, 0xab], 3, g, &mut bus);
    // mov word [rdi], 0x1234
    emulate(&mut s, &[0x66, 0xc7, 0x07, 0x34, 0x12], 5, g, &mut bus);
    // mov dword [rdi], 0x12345678
    emulate(&mut s, &[0xc7, 0x07, 0x78, 0x56, 0x34, 0x12], 6, g, &mut bus);
    // mov qword [rdi], -1 (imm32 sign-extended)
    emulate(&mut s, &[0x48, 0xc7, 0x07, 0xff, 0xff, 0xff, 0xff], 7, g, &mut bus);
    let written: Vec<_> = bus.log.iter().map(|l| (l.2, l.3)).collect();
    assert_eq!(
        written,
        [
            (AccessSize::Byte, 0xab),
            (AccessSize::Word, 0x1234),
            (AccessSize::Dword, 0x1234_5678),
            (AccessSize::Qword, u64::MAX)
        ]
    );
}

#[test]
fn rip_relative() {
    // mov eax, [rip+0x100]: EA = next RIP + 0x100.
    let bytes = [0x8b, 0x05, 0x00, 0x01, 0x00, 0x00];
    let ea = RIP + 6 + 0x100;
    let mut s = state();
    let mut bus = FakeBus { value: 7, ..Default::default() };
    let gpa = PAGE | (ea & 0xfff);
    emulate(&mut s, &bytes, 6, gpa, &mut bus);
    assert_eq!(s.gprs[RAX], 7);
    assert_eq!(bus.log[0].1, gpa);
    // The same instruction at a GPA with another page offset is refused.
    let mut s = state();
    let err = emulate_mmio(&mut s, &bytes, PAGE, &mut bus).unwrap_err();
    assert_eq!(err.why, Why::AddressMismatch { linear: ea, gpa: PAGE });
    assert_eq!(s, state(), "state untouched on error");
}

#[test]
fn sib_addressing() {
    // mov [rax+rcx*4+0x20], edx
    let mut s = state();
    s.gprs[RAX] = PAGE;
    s.gprs[RCX] = 3;
    let mut bus = FakeBus::default();
    emulate(&mut s, &[0x89, 0x54, 0x88, 0x20], 4, PAGE + 0x2c, &mut bus);
    assert_eq!(bus.log, [('w', PAGE + 0x2c, AccessSize::Dword, 0x3333_3333)]);
    // mov eax, [r12]  (R12 as base needs a SIB byte)
    let mut s = with_base(R12, 0x40);
    emulate(&mut s, &[0x41, 0x8b, 0x04, 0x24], 4, PAGE + 0x40, &mut bus);
    // mov eax, [r13]  (R13 as base needs a disp8)
    let mut s = with_base(R13, 0x44);
    emulate(&mut s, &[0x41, 0x8b, 0x45, 0x00], 4, PAGE + 0x44, &mut bus);
    // mov eax, [rbx+rsi*8-8]
    let mut s = state();
    s.gprs[RBX] = PAGE;
    s.gprs[RSI] = 2;
    emulate(&mut s, &[0x8b, 0x44, 0xf3, 0xf8], 4, PAGE + 8, &mut bus);
}

#[test]
fn segment_override_and_address_size() {
    // mov eax, fs:[rax]
    let mut s = state();
    s.fs_base = PAGE;
    s.gprs[RAX] = 0x18;
    let mut bus = FakeBus { value: 1, ..Default::default() };
    emulate(&mut s, &[0x64, 0x8b, 0x00], 3, PAGE + 0x18, &mut bus);
    // mov eax, [edi]: 32-bit address size truncates RDI.
    let mut s = state();
    s.gprs[RDI] = 0xffff_ffff_0000_0000 | (PAGE + 0x24);
    emulate(&mut s, &[0x67, 0x8b, 0x07], 3, PAGE + 0x24, &mut bus);
}

#[test]
fn moffs_forms() {
    let mut bus = FakeBus { value: 0x55, ..Default::default() };
    // mov eax, [abs 0xfee000b0]
    let mut s = state();
    emulate(&mut s, &[0xa1, 0xb0, 0x00, 0xe0, 0xfe, 0, 0, 0, 0], 9, PAGE + 0xb0, &mut bus);
    assert_eq!(s.gprs[RAX], 0x55);
    // mov [abs 0xfee000b0], al
    emulate(&mut s, &[0xa2, 0xb0, 0x00, 0xe0, 0xfe, 0, 0, 0, 0], 9, PAGE + 0xb0, &mut bus);
    assert_eq!(bus.log.last(), Some(&('w', PAGE + 0xb0, AccessSize::Byte, 0x55)));
}

#[test]
fn read_modify_write_forms() {
    let g = PAGE + 0x40;
    let mut bus = FakeBus { value: 0x0000_00f1, ..Default::default() };
    let mut s = with_base(RDI, 0x40);
    // or dword [rdi], 0x100
    let e = emulate(&mut s, &[0x81, 0x0f, 0x00, 0x01, 0x00, 0x00], 6, g, &mut bus);
    assert_eq!((e.access.read, e.access.written), (Some(0xf1), Some(0x1f1)));
    assert_eq!(e.access.kind, MmioAccessKind::ReadModifyWrite);
    // and dword [rdi], -2 (imm8 sign-extended)
    emulate(&mut s, &[0x83, 0x27, 0xfe], 3, g, &mut bus);
    assert_eq!(bus.value, 0x1f0);
    // lock or dword [rdi], 1
    emulate(&mut s, &[0xf0, 0x83, 0x0f, 0x01], 4, g, &mut bus);
    assert_eq!(bus.value, 0x1f1);
    // xor [rdi], ecx
    s.gprs[RCX] = 0x1f1;
    emulate(&mut s, &[0x31, 0x0f], 2, g, &mut bus);
    assert_eq!(bus.value, 0);
    assert_eq!(s.rflags & RFLAGS_ARITH, RFLAGS_ZF | RFLAGS_PF);
    // add byte [rdi], 0x7f ; add byte [rdi], 1  -> 0x80 with OF, SF, AF
    emulate(&mut s, &[0x80, 0x07, 0x7f], 3, g, &mut bus);
    emulate(&mut s, &[0x80, 0x07, 0x01], 3, g, &mut bus);
    assert_eq!(bus.value, 0x80);
    assert_eq!(s.rflags & RFLAGS_ARITH, RFLAGS_OF | RFLAGS_SF | RFLAGS_AF);
    // sub byte [rdi], 0x81 -> 0xff with CF
    emulate(&mut s, &[0x80, 0x2f, 0x81], 3, g, &mut bus);
    assert_eq!(bus.value, 0xff);
    assert_ne!(s.rflags & RFLAGS_CF, 0);
    // add [rdi], eax (register source)
    s.gprs[RAX] = 1;
    bus.value = 0xffff_ffff;
    emulate(&mut s, &[0x01, 0x07], 2, g, &mut bus);
    assert_eq!(bus.value, 0);
    assert_eq!(s.rflags & (RFLAGS_CF | RFLAGS_ZF), RFLAGS_CF | RFLAGS_ZF);
    assert_eq!(s.rflags & 0x2, 0x2, "non-arithmetic flags kept");
    let _ = AluOp::Sub;
}

#[test]
fn protected_mode_32_bit() {
    let mut s = state();
    s.mode = CpuMode::Protected32;
    s.rip = 0xc100_0000;
    s.gprs[RDI] = PAGE + 0x10;
    let mut bus = FakeBus { value: 0xdead_beef, ..Default::default() };
    // mov eax, [edi]
    emulate(&mut s, &[0x8b, 0x07], 2, PAGE + 0x10, &mut bus);
    assert_eq!(s.gprs[RAX], 0xdead_beef);
    // mov ax, [edi]
    emulate(&mut s, &[0x66, 0x8b, 0x07], 3, PAGE + 0x10, &mut bus);
    // 0x48 is DEC EAX in 32-bit code, not REX.W.
    let err = emulate_mmio(&mut s, &[0x48, 0x8b, 0x07], PAGE + 0x10, &mut bus).unwrap_err();
    assert_eq!((err.why, err.mnemonic), (Why::UnsupportedInstruction, Some(iced_x86::Mnemonic::Dec)));
}

/// Every GPR × width through `mov reg, [rdi]` and `mov [rdi], reg`,
/// encodings generated: REX always present for 8-bit so 4–7 are
/// SPL/BPL/SIL/DIL.
#[test]
fn every_register_and_width() {
    for reg in 0..16u8 {
        for (bits, opsize) in [(8u32, false), (16, true), (32, false), (64, false)] {
            let rex = 0x40 | if bits == 64 { 8 } else { 0 } | ((reg >> 3) << 2);
            let modrm = ((reg & 7) << 3) | 7; // [rdi]
            let mut load = Vec::new();
            if opsize {
                load.push(0x66);
            }
            load.push(rex);
            load.push(if bits == 8 { 0x8a } else { 0x8b });
            load.push(modrm);
            let mut store = load.clone();
            *store.iter_mut().rev().nth(1).unwrap() = if bits == 8 { 0x88 } else { 0x89 };

            let mut s = state();
            let base_reg = s.gprs[usize::from(reg)];
            s.gprs[RDI] = PAGE + 0x80;
            let mut bus = FakeBus { value: 0x0807_0605_0403_0201, ..Default::default() };
            let len = load.len();
            // Loading into RDI itself works: the address is computed first.
            emulate(&mut s, &load, len, PAGE + 0x80, &mut bus);
            let mask = if bits == 64 { u64::MAX } else { (1u64 << bits) - 1 };
            let expected = match bits {
                32 | 64 => 0x0807_0605_0403_0201 & mask,
                _ => {
                    let before = if reg as usize == RDI { PAGE + 0x80 } else { base_reg };
                    (before & !mask) | (0x0807_0605_0403_0201 & mask)
                }
            };
            assert_eq!(s.gprs[usize::from(reg)], expected, "load r{reg} {bits}-bit");

            let mut s = state();
            s.gprs[RDI] = PAGE + 0x80;
            let src = s.gprs[usize::from(reg)];
            emulate(&mut s, &store, len, PAGE + 0x80, &mut bus);
            assert_eq!(bus.log.last().unwrap().3, src & mask, "store r{reg} {bits}-bit");
        }
    }
}

#[test]
fn refusals_name_the_instruction() {
    let cases: &[(&[u8], Why)] = &[
        (&[0x90], Why::UnsupportedInstruction),                   // nop
        (&[0xff, 0x30], Why::UnsupportedInstruction),             // push qword [rax]
        (&[0xa4], Why::UnsupportedInstruction),                   // movsb
        (&[0x87, 0x07], Why::UnsupportedInstruction),             // xchg [rdi], eax
        (&[0x85, 0x07], Why::UnsupportedInstruction),             // test [rdi], eax
        (&[0x0f, 0xb1, 0x0f], Why::UnsupportedInstruction),       // cmpxchg [rdi], ecx
        (&[0xc5, 0xfe, 0x6f, 0x07], Why::UnsupportedInstruction), // vmovdqu ymm0, [rdi]
        (&[0x03, 0x07], Why::UnsupportedOperands),                // add eax, [rdi]
        (&[0x8c, 0x07], Why::UnsupportedOperands),                // mov [rdi], es
        (&[0x8b, 0xc7], Why::NoMemoryOperand),                    // mov eax, edi
        (&[0x0f, 0x22, 0xc0], Why::NoMemoryOperand),              // mov cr0, rax
        (&[0x8b], Why::Truncated),
        (&[0xc7, 0x07, 0x78, 0x56], Why::Truncated),
        (&[], Why::Truncated),
        (&[0x06, 0x90], Why::InvalidInstruction), // push es: invalid in 64-bit mode
        (&[0xf0, 0x89, 0x07], Why::InvalidInstruction), // lock mov
    ];
    for (bytes, why) in cases {
        let mut s = with_base(RDI, 0);
        s.gprs[RAX] = PAGE;
        let mut bus = FakeBus::default();
        let err = emulate_mmio(&mut s, bytes, PAGE, &mut bus).unwrap_err();
        assert_eq!(err.why, *why, "{bytes:02x?}: {err}");
        assert_eq!(err.bytes(), *bytes);
        assert_eq!(err.rip, RIP);
        assert!(bus.log.is_empty());
        assert_eq!(s.rip, RIP);
    }
    let err = emulate_mmio(&mut state(), &[0x03, 0x07], PAGE, &mut FakeBus::default()).unwrap_err();
    assert!(err.to_string().contains("[03 07] (Add)"), "{err}");
}

#[test]
fn real_mode_page_crossing_and_bus_errors() {
    let mut s = with_base(RDI, 0xffe);
    s.mode = CpuMode::Real16;
    let err = emulate_mmio(&mut s, &[0x8b, 0x07], PAGE + 0xffe, &mut FakeBus::default()).unwrap_err();
    assert_eq!(err.why, Why::UnsupportedMode);
    let mut s = with_base(RDI, 0xffe);
    let err = emulate_mmio(&mut s, &[0x8b, 0x07], PAGE + 0xffe, &mut FakeBus::default()).unwrap_err();
    assert_eq!(err.why, Why::PageCrossing);
    // A 2-byte access at 0xffe fits.
    emulate(&mut s, &[0x66, 0x8b, 0x07], 3, PAGE + 0xffe, &mut FakeBus::default());
    let mut s = with_base(RDI, 0);
    let before = s;
    let mut bus = FakeBus { fail: Some(BusError::NoDevice), ..Default::default() };
    let err = emulate_mmio(&mut s, &[0x8b, 0x07], PAGE, &mut bus).unwrap_err();
    assert_eq!(err.why, Why::Bus(BusError::NoDevice));
    assert_eq!(s, before);
    let err = emulate_mmio(&mut s, &[0x83, 0x0f, 0x01], PAGE, &mut bus).unwrap_err();
    assert_eq!(err.why, Why::Bus(BusError::NoDevice));
    assert_eq!(s, before, "flags untouched when the RMW fails");
}

#[test]
fn extra_bytes_after_the_instruction_are_ignored() {
    let mut s = with_base(RDI, 0);
    let mut bus = FakeBus::default();
    let mut bytes = [0xccu8; 20];
    bytes[..2].copy_from_slice(&[0x89, 0x07]);
    let e = emulate_mmio(&mut s, &bytes, PAGE, &mut bus).unwrap();
    assert_eq!(e.len, 2);
}
