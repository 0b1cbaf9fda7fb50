//! Guest bytes are hostile: whatever they are, `emulate_mmio` returns Ok or
//! Err and never panics. On Ok the new RIP is RIP + the length iced decodes
//! independently, and only the destination (register or RFLAGS) and RIP
//! changed; on Err nothing changed.

use iced_x86::{Decoder, DecoderOptions};
use proptest::prelude::*;
use sinter_mmio_emulator::*;

/// SplitMix64: a small deterministic generator, so failures reproduce.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// A bus that answers with a fixed value or refuses, at random.
struct RandomBus {
    value: u64,
    refuse: bool,
    accesses: usize,
}

impl MmioBus for RandomBus {
    fn read(&mut self, _gpa: u64, _size: AccessSize) -> Result<u64, BusError> {
        self.accesses += 1;
        if self.refuse {
            Err(BusError::Refused)
        } else {
            Ok(self.value)
        }
    }
    fn write(&mut self, _gpa: u64, _size: AccessSize, _value: u64) -> Result<(), BusError> {
        self.accesses += 1;
        if self.refuse {
            Err(BusError::NoDevice)
        } else {
            Ok(())
        }
    }
}

/// Opcode starts that reach the interesting paths more often than chance.
const SEEDS: &[&[u8]] = &[
    &[0x88],
    &[0x89],
    &[0x8a],
    &[0x8b],
    &[0xc6],
    &[0xc7],
    &[0x0f, 0xb6],
    &[0x0f, 0xb7],
    &[0x0f, 0xbe],
    &[0x0f, 0xbf],
    &[0x63],
    &[0x80],
    &[0x81],
    &[0x83],
    &[0x01],
    &[0x09],
    &[0x21],
    &[0x29],
    &[0x31],
    &[0xa0],
    &[0xa1],
    &[0xa2],
    &[0xa3],
];
const PREFIXES: &[u8] = &[0x66, 0x67, 0xf0, 0xf2, 0xf3, 0x64, 0x65, 0x2e, 0x40, 0x41, 0x44, 0x48, 0x4c, 0x4f];

fn random_case(rng: &mut Rng) -> (Vec<u8>, GuestCpuState) {
    let mut bytes = Vec::new();
    if rng.below(2) == 0 {
        for _ in 0..rng.below(3) {
            bytes.push(PREFIXES[rng.below(PREFIXES.len() as u64) as usize]);
        }
        bytes.extend_from_slice(SEEDS[rng.below(SEEDS.len() as u64) as usize]);
    }
    let len = rng.below(17) as usize;
    while bytes.len() < len {
        bytes.push(rng.next() as u8);
    }
    let mut s = GuestCpuState::new_long64(rng.next());
    s.mode = match rng.below(8) {
        0 => CpuMode::Protected32,
        1 => CpuMode::Real16,
        _ => CpuMode::Long64,
    };
    if s.mode == CpuMode::Protected32 {
        s.rip &= 0xffff_ffff;
    }
    for r in &mut s.gprs {
        *r = if rng.below(2) == 0 { rng.below(0x10000) } else { rng.next() };
    }
    s.rflags = rng.next();
    s.fs_base = rng.next();
    s.gs_base = rng.next();
    (bytes, s)
}

fn check(bytes: &[u8], state: GuestCpuState, gpa: u64, bus: &mut RandomBus) -> Result<Emulated, EmulationError> {
    let mut s = state;
    let r = emulate_mmio(&mut s, bytes, gpa, bus);
    match &r {
        Ok(e) => {
            let bitness = if state.mode == CpuMode::Long64 { 64 } else { 32 };
            let iced =
                Decoder::with_ip(bitness, &bytes[..bytes.len().min(15)], state.rip, DecoderOptions::NONE).decode();
            assert_eq!(usize::from(e.len), iced.len(), "{bytes:02x?}");
            assert_eq!(e.next_rip, iced.next_ip());
            assert_eq!(s.rip, e.next_rip);
            let changed = (0..16).filter(|&i| s.gprs[i] != state.gprs[i]).count();
            assert!(changed <= 1, "{bytes:02x?} changed {changed} registers");
            if e.access.kind != MmioAccessKind::ReadModifyWrite {
                assert_eq!(s.rflags, state.rflags, "{bytes:02x?}");
            }
            assert_eq!(e.access.gpa, gpa);
        }
        Err(err) => {
            assert_eq!(s, state, "{bytes:02x?}: state changed on error {err}");
            let _ = err.to_string();
        }
    }
    r
}

/// ≥ 100,000 random byte strings (here 200,000), half starting with a
/// prefix/opcode a supported form could start with. The faulting GPA is
/// made to match the operand's page offset when the bytes decode, so the
/// bus side is exercised too.
#[test]
fn two_hundred_thousand_random_instructions() {
    let mut rng = Rng(0x5eed_5147_e11a_0001);
    let (mut ok, mut errs) = (0u32, 0u32);
    for _ in 0..200_000 {
        let (bytes, state) = random_case(&mut rng);
        let mut gpa = rng.next() & 0x000f_ffff_ffff_ffff;
        if let Ok(insn) = decode_mmio(&bytes, state.rip, state.mode) {
            if let Some(linear) = insn.linear_address(&state) {
                if rng.below(4) != 0 {
                    gpa = (gpa & !0xfff) | (linear & 0xfff);
                }
            }
        }
        let mut bus = RandomBus { value: rng.next(), refuse: rng.below(10) == 0, accesses: 0 };
        match check(&bytes, state, gpa, &mut bus) {
            Ok(_) => ok += 1,
            Err(_) => errs += 1,
        }
        assert!(bus.accesses <= 2);
    }
    // The run must actually exercise emulation, not just rejection.
    assert!(ok > 20_000, "only {ok} emulated ({errs} refused)");
    println!("{ok} emulated, {errs} refused");
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(5_000))]

    /// Any bytes, any state, any GPA: a result, never a panic.
    #[test]
    fn arbitrary_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..20), gprs in any::<[u64; 16]>(), rip in any::<u64>(), gpa in any::<u64>(), mode in 0u8..3) {
        let mut state = GuestCpuState::new_long64(rip);
        state.gprs = gprs;
        state.mode = [CpuMode::Long64, CpuMode::Protected32, CpuMode::Real16][usize::from(mode)];
        let mut bus = RandomBus { value: gpa.rotate_left(7), refuse: false, accesses: 0 };
        let _ = check(&bytes, state, gpa, &mut bus);
    }
}
