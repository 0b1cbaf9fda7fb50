//! Reading the ACPI MADT ("APIC" table, ACPI 6.5 §5.2.12): which local APICs
//! (cores) exist, where the IOAPICs are, and how ISA IRQs map to global
//! system interrupts. Takes the table's bytes; allocates nothing.

/// Local APIC flag bits (ACPI 6.5 Table 5.23).
const LAPIC_ENABLED: u32 = 1;
const LAPIC_ONLINE_CAPABLE: u32 = 2;
const HEADER_LEN: usize = 36;
const FIXED_LEN: usize = HEADER_LEN + 8;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MadtError {
    TooShort,
    BadSignature,
    /// The header's length field disagrees with the bytes given.
    BadLength,
}

/// A processor's local APIC (type 0, or type 9 for x2APIC ids).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LocalApic {
    pub apic_id: u32,
    /// Usable now.
    pub enabled: bool,
    /// Disabled, but the OS may bring it online later (hot-add).
    pub online_capable: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct IoApic {
    pub id: u8,
    pub address: u32,
    /// First global system interrupt (GSI) this IOAPIC's pin 0 carries.
    pub gsi_base: u32,
}

/// Pin polarity of an interrupt source (MPS INTI flags).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Polarity {
    ActiveHigh,
    ActiveLow,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Trigger {
    Edge,
    Level,
}

/// An ISA IRQ that is not wired to the GSI of the same number.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SourceOverride {
    pub isa_irq: u8,
    pub gsi: u32,
    pub polarity: Polarity,
    pub trigger: Trigger,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MadtEntry {
    LocalApic(LocalApic),
    IoApic(IoApic),
    SourceOverride(SourceOverride),
    /// LINTn of `processor` (ACPI processor UID; `u32::MAX`/0xff = all) is the NMI.
    LocalApicNmi {
        processor: u32,
        lint: u8,
    },
    LocalApicAddressOverride(u64),
    Other {
        kind: u8,
    },
}

/// A validated MADT.
#[derive(Clone, Copy, Debug)]
pub struct Madt<'a> {
    table: &'a [u8],
}

fn u16_at(bytes: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_le_bytes(bytes.get(at..at + 2)?.try_into().ok()?))
}

fn u32_at(bytes: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_le_bytes(bytes.get(at..at + 4)?.try_into().ok()?))
}

fn u64_at(bytes: &[u8], at: usize) -> Option<u64> {
    Some(u64::from_le_bytes(bytes.get(at..at + 8)?.try_into().ok()?))
}

impl<'a> Madt<'a> {
    /// Checks signature and length; `table` is the whole table, header included.
    pub fn parse(table: &'a [u8]) -> Result<Self, MadtError> {
        if table.len() < FIXED_LEN {
            return Err(MadtError::TooShort);
        }
        if &table[..4] != b"APIC" {
            return Err(MadtError::BadSignature);
        }
        let length = u32_at(table, 4).ok_or(MadtError::TooShort)? as usize;
        if length < FIXED_LEN || length > table.len() {
            return Err(MadtError::BadLength);
        }
        Ok(Self { table: &table[..length] })
    }

    /// The local APIC's physical address (an override entry wins).
    pub fn local_apic_address(&self) -> u64 {
        let base = u64::from(u32_at(self.table, HEADER_LEN).unwrap_or(0));
        self.entries()
            .filter_map(|e| match e {
                MadtEntry::LocalApicAddressOverride(address) => Some(address),
                _ => None,
            })
            .last()
            .unwrap_or(base)
    }

    /// True when the machine also has dual 8259 PICs (which must be masked).
    pub fn has_8259(&self) -> bool {
        u32_at(self.table, HEADER_LEN + 4).unwrap_or(0) & 1 != 0
    }

    /// The interrupt controller structures, in table order. A truncated or
    /// zero-length entry ends the walk.
    pub fn entries(&self) -> impl Iterator<Item = MadtEntry> + 'a {
        let table = self.table;
        let mut at = FIXED_LEN;
        core::iter::from_fn(move || {
            let kind = *table.get(at)?;
            let len = usize::from(*table.get(at + 1)?);
            if len < 2 || at + len > table.len() {
                return None;
            }
            let entry = &table[at..at + len];
            at += len;
            Some(decode(kind, entry).unwrap_or(MadtEntry::Other { kind }))
        })
    }

    /// Local APICs of processors that are enabled now, in table order.
    pub fn enabled_local_apics(&self) -> impl Iterator<Item = LocalApic> + 'a {
        self.entries().filter_map(|e| match e {
            MadtEntry::LocalApic(lapic) if lapic.enabled => Some(lapic),
            _ => None,
        })
    }

    pub fn io_apics(&self) -> impl Iterator<Item = IoApic> + 'a {
        self.entries().filter_map(|e| match e {
            MadtEntry::IoApic(ioapic) => Some(ioapic),
            _ => None,
        })
    }

    /// Where ISA IRQ `irq` arrives: its override, or the identity mapping
    /// with ISA's defaults (edge, active high).
    pub fn isa_irq(&self, irq: u8) -> SourceOverride {
        self.entries()
            .find_map(|e| match e {
                MadtEntry::SourceOverride(o) if o.isa_irq == irq => Some(o),
                _ => None,
            })
            .unwrap_or(SourceOverride {
                isa_irq: irq,
                gsi: u32::from(irq),
                polarity: Polarity::ActiveHigh,
                trigger: Trigger::Edge,
            })
    }
}

fn decode(kind: u8, e: &[u8]) -> Option<MadtEntry> {
    Some(match kind {
        0 => {
            let flags = u32_at(e, 4)?;
            MadtEntry::LocalApic(LocalApic {
                apic_id: u32::from(*e.get(3)?),
                enabled: flags & LAPIC_ENABLED != 0,
                online_capable: flags & LAPIC_ONLINE_CAPABLE != 0,
            })
        }
        1 => MadtEntry::IoApic(IoApic { id: *e.get(2)?, address: u32_at(e, 4)?, gsi_base: u32_at(e, 8)? }),
        2 => {
            let bus = *e.get(2)?;
            if bus != 0 {
                return None;
            }
            let flags = u16_at(e, 8)?;
            // MPS INTI flags: polarity bits 1:0, trigger bits 3:2; 0 = bus default (ISA: high, edge).
            MadtEntry::SourceOverride(SourceOverride {
                isa_irq: *e.get(3)?,
                gsi: u32_at(e, 4)?,
                polarity: if flags & 0b11 == 0b11 { Polarity::ActiveLow } else { Polarity::ActiveHigh },
                trigger: if (flags >> 2) & 0b11 == 0b11 { Trigger::Level } else { Trigger::Edge },
            })
        }
        4 => {
            let uid = *e.get(2)?;
            MadtEntry::LocalApicNmi { processor: if uid == 0xff { u32::MAX } else { u32::from(uid) }, lint: *e.get(5)? }
        }
        5 => MadtEntry::LocalApicAddressOverride(u64_at(e, 4)?),
        9 => {
            let flags = u32_at(e, 8)?;
            MadtEntry::LocalApic(LocalApic {
                apic_id: u32_at(e, 4)?,
                enabled: flags & LAPIC_ENABLED != 0,
                online_capable: flags & LAPIC_ONLINE_CAPABLE != 0,
            })
        }
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A MADT like QEMU q35's with `-smp 3`, one disabled CPU added, the
    /// usual IRQ0 → GSI2 override and a level/low override for IRQ9.
    fn sample() -> Vec<u8> {
        let mut t = Vec::new();
        t.extend_from_slice(b"APIC");
        t.extend_from_slice(&0u32.to_le_bytes()); // length, patched below
        t.extend_from_slice(&[1, 0]); // revision, checksum
        t.extend_from_slice(b"BOCHS BXPC    \x01\x00\x00\x00BXPC\x01\x00\x00\x00");
        assert_eq!(t.len(), HEADER_LEN);
        t.extend_from_slice(&0xfee0_0000u32.to_le_bytes());
        t.extend_from_slice(&1u32.to_le_bytes()); // PCAT_COMPAT
        for (uid, id, flags) in [(0u8, 0u8, 1u32), (1, 1, 1), (2, 2, 1), (3, 3, 2)] {
            t.extend_from_slice(&[0, 8, uid, id]);
            t.extend_from_slice(&flags.to_le_bytes());
        }
        t.extend_from_slice(&[1, 12, 0, 0]);
        t.extend_from_slice(&0xfec0_0000u32.to_le_bytes());
        t.extend_from_slice(&0u32.to_le_bytes());
        t.extend_from_slice(&[2, 10, 0, 0]);
        t.extend_from_slice(&2u32.to_le_bytes());
        t.extend_from_slice(&0u16.to_le_bytes());
        t.extend_from_slice(&[2, 10, 0, 9]);
        t.extend_from_slice(&9u32.to_le_bytes());
        t.extend_from_slice(&0b1111u16.to_le_bytes());
        t.extend_from_slice(&[4, 6, 0xff, 0, 0, 1]);
        // An x2APIC entry for a core with a 32-bit id.
        t.extend_from_slice(&[9, 16, 0, 0]);
        t.extend_from_slice(&0x1_0000u32.to_le_bytes());
        t.extend_from_slice(&1u32.to_le_bytes());
        t.extend_from_slice(&7u32.to_le_bytes());
        let len = t.len() as u32;
        t[4..8].copy_from_slice(&len.to_le_bytes());
        t
    }

    #[test]
    fn reads_cores_ioapic_and_overrides() {
        let bytes = sample();
        let madt = Madt::parse(&bytes).unwrap();
        assert_eq!(madt.local_apic_address(), 0xfee0_0000);
        assert!(madt.has_8259());
        let ids: Vec<u32> = madt.enabled_local_apics().map(|l| l.apic_id).collect();
        assert_eq!(ids, [0, 1, 2, 0x1_0000]);
        assert_eq!(madt.io_apics().collect::<Vec<_>>(), [IoApic { id: 0, address: 0xfec0_0000, gsi_base: 0 }]);
        let timer = madt.isa_irq(0);
        assert_eq!((timer.gsi, timer.polarity, timer.trigger), (2, Polarity::ActiveHigh, Trigger::Edge));
        let sci = madt.isa_irq(9);
        assert_eq!((sci.gsi, sci.polarity, sci.trigger), (9, Polarity::ActiveLow, Trigger::Level));
        assert_eq!(madt.isa_irq(4).gsi, 4);
        assert!(madt.entries().any(|e| e == MadtEntry::LocalApicNmi { processor: u32::MAX, lint: 1 }));
        let disabled = madt.entries().find_map(|e| match e {
            MadtEntry::LocalApic(l) if !l.enabled => Some(l),
            _ => None,
        });
        assert_eq!(disabled, Some(LocalApic { apic_id: 3, enabled: false, online_capable: true }));
    }

    #[test]
    fn address_override_wins() {
        let mut bytes = sample();
        bytes.extend_from_slice(&[5, 12, 0, 0]);
        bytes.extend_from_slice(&0x1_fee0_0000u64.to_le_bytes());
        let len = bytes.len() as u32;
        bytes[4..8].copy_from_slice(&len.to_le_bytes());
        assert_eq!(Madt::parse(&bytes).unwrap().local_apic_address(), 0x1_fee0_0000);
    }

    #[test]
    fn rejects_bad_tables_and_survives_any_truncation() {
        let bytes = sample();
        assert_eq!(Madt::parse(&bytes[..20]).unwrap_err(), MadtError::TooShort);
        let mut wrong = bytes.clone();
        wrong[0] = b'X';
        assert_eq!(Madt::parse(&wrong).unwrap_err(), MadtError::BadSignature);
        assert_eq!(Madt::parse(&bytes[..bytes.len() - 1]).unwrap_err(), MadtError::BadLength);
        for cut in FIXED_LEN..bytes.len() {
            let mut t = bytes[..cut].to_vec();
            t[4..8].copy_from_slice(&(cut as u32).to_le_bytes());
            let madt = Madt::parse(&t).unwrap();
            assert!(madt.entries().count() <= 10);
        }
        // A zero-length entry must not loop forever.
        let mut zero = bytes[..FIXED_LEN].to_vec();
        zero.extend_from_slice(&[0, 0, 0, 0]);
        let len = zero.len() as u32;
        zero[4..8].copy_from_slice(&len.to_le_bytes());
        assert_eq!(Madt::parse(&zero).unwrap().entries().count(), 0);
    }
}
