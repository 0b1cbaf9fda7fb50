//! FADT, revision 6.5 (ACPI 6.5 §5.2.9): a full (not hardware-reduced)
//! PC-AT style fixed-hardware description of Sinter's emulated chipset.
//!
//! What it says, and what the platform service must therefore emulate:
//! - PM1a event block (4 bytes), PM1a control block (2 bytes) and a
//!   32-bit PM timer at the ports in [`PmRegisters`]; no PM1b, PM2 or GPE
//!   blocks.
//! - SMI_CMD = 0: no SMI, ACPI mode from reset (`SCI_EN` always reads 1).
//! - SCI on ISA IRQ `sci_irq` (level, active high; see the MADT).
//! - Flags: WBINVD works (the hypervisor makes it a no-op, which is
//!   coherent for the guest), C1 via HLT, no fixed power or sleep button,
//!   no RTC wake, 32-bit PM timer, xAPIC physical destination mode forced
//!   (the emulated xAPIC routes by APIC ID across nodes), no reset register.
//! - IA-PC boot flags: legacy ISA devices present (the UART), no 8042, no
//!   VGA, no CMOS RTC. Century and the RTC alarm fields are 0; the C2/C3
//!   latencies are 101/1001 µs, which means "not supported".

use zerocopy::little_endian::{U16, U32, U64};
use zerocopy::{Immutable, IntoBytes, KnownLayout, Unaligned};

use crate::machine::PmRegisters;
use crate::sdt::{checksum, AccessSize, GenericAddress, SdtHeader};

/// FADT feature flags (ACPI 6.5 table 5.10) Sinter sets.
pub mod flags {
    pub const WBINVD: u32 = 1 << 0;
    pub const PROC_C1: u32 = 1 << 2;
    pub const PWR_BUTTON: u32 = 1 << 4;
    pub const SLP_BUTTON: u32 = 1 << 5;
    pub const FIX_RTC: u32 = 1 << 6;
    pub const TMR_VAL_EXT: u32 = 1 << 8;
    pub const RESET_REG_SUP: u32 = 1 << 10;
    pub const FORCE_APIC_PHYSICAL_DESTINATION_MODE: u32 = 1 << 19;
    pub const HW_REDUCED_ACPI: u32 = 1 << 20;

    /// What Sinter's chipset is.
    pub const SINTER: u32 =
        WBINVD | PROC_C1 | PWR_BUTTON | SLP_BUTTON | FIX_RTC | TMR_VAL_EXT | FORCE_APIC_PHYSICAL_DESTINATION_MODE;
}

/// IA-PC boot architecture flags (ACPI 6.5 table 5.11) Sinter sets.
pub mod boot_arch {
    pub const LEGACY_DEVICES: u16 = 1 << 0;
    pub const I8042: u16 = 1 << 1;
    pub const VGA_NOT_PRESENT: u16 = 1 << 2;
    pub const CMOS_RTC_NOT_PRESENT: u16 = 1 << 5;

    /// What Sinter's chipset is.
    pub const SINTER: u16 = LEGACY_DEVICES | VGA_NOT_PRESENT | CMOS_RTC_NOT_PRESENT;
}

/// Fixed ACPI Description Table, 276 bytes.
#[repr(C, packed)]
#[derive(Clone, Copy, Debug, IntoBytes, Immutable, KnownLayout, Unaligned)]
pub struct Fadt {
    pub header: SdtHeader,
    pub firmware_ctrl: U32,
    pub dsdt: U32,
    pub reserved0: u8,
    pub preferred_pm_profile: u8,
    pub sci_int: U16,
    pub smi_cmd: U32,
    pub acpi_enable: u8,
    pub acpi_disable: u8,
    pub s4bios_req: u8,
    pub pstate_cnt: u8,
    pub pm1a_evt_blk: U32,
    pub pm1b_evt_blk: U32,
    pub pm1a_cnt_blk: U32,
    pub pm1b_cnt_blk: U32,
    pub pm2_cnt_blk: U32,
    pub pm_tmr_blk: U32,
    pub gpe0_blk: U32,
    pub gpe1_blk: U32,
    pub pm1_evt_len: u8,
    pub pm1_cnt_len: u8,
    pub pm2_cnt_len: u8,
    pub pm_tmr_len: u8,
    pub gpe0_blk_len: u8,
    pub gpe1_blk_len: u8,
    pub gpe1_base: u8,
    pub cst_cnt: u8,
    pub p_lvl2_lat: U16,
    pub p_lvl3_lat: U16,
    pub flush_size: U16,
    pub flush_stride: U16,
    pub duty_offset: u8,
    pub duty_width: u8,
    pub day_alrm: u8,
    pub mon_alrm: u8,
    pub century: u8,
    pub iapc_boot_arch: U16,
    pub reserved1: u8,
    pub flags: U32,
    pub reset_reg: GenericAddress,
    pub reset_value: u8,
    pub arm_boot_arch: U16,
    pub fadt_minor_version: u8,
    pub x_firmware_ctrl: U64,
    pub x_dsdt: U64,
    pub x_pm1a_evt_blk: GenericAddress,
    pub x_pm1b_evt_blk: GenericAddress,
    pub x_pm1a_cnt_blk: GenericAddress,
    pub x_pm1b_cnt_blk: GenericAddress,
    pub x_pm2_cnt_blk: GenericAddress,
    pub x_pm_tmr_blk: GenericAddress,
    pub x_gpe0_blk: GenericAddress,
    pub x_gpe1_blk: GenericAddress,
    pub sleep_control_reg: GenericAddress,
    pub sleep_status_reg: GenericAddress,
    pub hypervisor_vendor_identity: U64,
}

const _: () = assert!(size_of::<Fadt>() == 276);
const _: () = assert!(core::mem::offset_of!(Fadt, sci_int) == 46);
const _: () = assert!(core::mem::offset_of!(Fadt, pm1a_evt_blk) == 56);
const _: () = assert!(core::mem::offset_of!(Fadt, iapc_boot_arch) == 109);
const _: () = assert!(core::mem::offset_of!(Fadt, flags) == 112);
const _: () = assert!(core::mem::offset_of!(Fadt, x_dsdt) == 140);
const _: () = assert!(core::mem::offset_of!(Fadt, x_pm_tmr_blk) == 208);

/// PM profile: "enterprise server" (Linux uses it for a few defaults).
const PM_PROFILE_ENTERPRISE_SERVER: u8 = 4;

impl Fadt {
    /// A sealed FADT for `pm`, pointing at the DSDT and the FACS through
    /// the 64-bit fields only (the 32-bit ones are 0, as ACPI 6.5 asks
    /// when the X_ fields are used).
    pub fn new(pm: &PmRegisters, dsdt: u64, facs: u64) -> Self {
        let zero16 = U16::new(0);
        let zero32 = U32::new(0);
        let mut fadt = Self {
            header: SdtHeader::new(*b"FACP", 6, size_of::<Self>() as u32),
            firmware_ctrl: zero32,
            dsdt: zero32,
            reserved0: 0,
            preferred_pm_profile: PM_PROFILE_ENTERPRISE_SERVER,
            sci_int: u16::from(pm.sci_irq).into(),
            smi_cmd: zero32,
            acpi_enable: 0,
            acpi_disable: 0,
            s4bios_req: 0,
            pstate_cnt: 0,
            pm1a_evt_blk: u32::from(pm.pm1a_event).into(),
            pm1b_evt_blk: zero32,
            pm1a_cnt_blk: u32::from(pm.pm1a_control).into(),
            pm1b_cnt_blk: zero32,
            pm2_cnt_blk: zero32,
            pm_tmr_blk: u32::from(pm.pm_timer).into(),
            gpe0_blk: zero32,
            gpe1_blk: zero32,
            pm1_evt_len: PmRegisters::PM1_EVENT_LEN,
            pm1_cnt_len: PmRegisters::PM1_CONTROL_LEN,
            pm2_cnt_len: 0,
            pm_tmr_len: PmRegisters::PM_TIMER_LEN,
            gpe0_blk_len: 0,
            gpe1_blk_len: 0,
            gpe1_base: 0,
            cst_cnt: 0,
            // > 100 and > 1000: C2 and C3 not supported (ACPI 6.5 table 5.9).
            p_lvl2_lat: 101.into(),
            p_lvl3_lat: 1001.into(),
            flush_size: zero16,
            flush_stride: zero16,
            duty_offset: 0,
            duty_width: 0,
            day_alrm: 0,
            mon_alrm: 0,
            century: 0,
            iapc_boot_arch: boot_arch::SINTER.into(),
            reserved1: 0,
            flags: flags::SINTER.into(),
            reset_reg: GenericAddress::default(),
            reset_value: 0,
            arm_boot_arch: zero16,
            fadt_minor_version: 5,
            x_firmware_ctrl: facs.into(),
            x_dsdt: dsdt.into(),
            x_pm1a_evt_blk: GenericAddress::io(pm.pm1a_event, PmRegisters::PM1_EVENT_LEN, AccessSize::Word),
            x_pm1b_evt_blk: GenericAddress::default(),
            x_pm1a_cnt_blk: GenericAddress::io(pm.pm1a_control, PmRegisters::PM1_CONTROL_LEN, AccessSize::Word),
            x_pm1b_cnt_blk: GenericAddress::default(),
            x_pm2_cnt_blk: GenericAddress::default(),
            x_pm_tmr_blk: GenericAddress::io(pm.pm_timer, PmRegisters::PM_TIMER_LEN, AccessSize::Dword),
            x_gpe0_blk: GenericAddress::default(),
            x_gpe1_blk: GenericAddress::default(),
            sleep_control_reg: GenericAddress::default(),
            sleep_status_reg: GenericAddress::default(),
            hypervisor_vendor_identity: 0.into(),
        };
        fadt.header.checksum = checksum(fadt.as_bytes());
        fadt
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sdt::byte_sum;

    #[test]
    fn sealed_and_full_hardware() {
        let f = Fadt::new(&PmRegisters::SINTER, 0xE_0100, 0xE_0040);
        assert_eq!(byte_sum(f.as_bytes()), 0);
        assert_eq!(f.flags.get() & flags::HW_REDUCED_ACPI, 0);
        assert_eq!(f.flags.get() & flags::RESET_REG_SUP, 0);
        assert_eq!(f.pm1a_cnt_blk.get(), 0x604);
        assert_eq!(f.x_dsdt.get(), 0xE_0100);
        assert_eq!(f.century, 0);
    }
}
