//! Interrupt messages on the (virtual) APIC bus: what the I/O APIC sends,
//! what a local APIC's ICR sends, and how a destination resolves to vCPUs.

/// APIC delivery mode (ICR / redirection entry bits 10:8).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DeliveryMode {
    Fixed,
    /// Lowest priority. Sinter does not arbitrate priorities across nodes:
    /// [`resolve_destinations`] picks the first matching vCPU.
    LowestPriority,
    Smi,
    Nmi,
    Init,
    /// Start-up IPI (ICR only; reserved in an I/O APIC entry).
    StartUp,
    ExtInt,
    /// Encoding 0b011 (reserved everywhere).
    Reserved,
}

impl DeliveryMode {
    /// Decodes the three-bit field (only the low 3 bits of `bits` count).
    pub fn from_bits(bits: u32) -> Self {
        match bits & 7 {
            0 => Self::Fixed,
            1 => Self::LowestPriority,
            2 => Self::Smi,
            3 => Self::Reserved,
            4 => Self::Nmi,
            5 => Self::Init,
            6 => Self::StartUp,
            _ => Self::ExtInt,
        }
    }
}

/// Physical (APIC ID) or logical (LDR match) destination.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DestinationMode {
    Physical,
    Logical,
}

/// Edge or level triggered.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TriggerMode {
    Edge,
    Level,
}

/// ICR destination shorthand (bits 19:18). I/O APIC messages use `None`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Shorthand {
    /// Use the destination field.
    None,
    SelfOnly,
    AllIncludingSelf,
    AllExcludingSelf,
}

/// One interrupt message: an I/O APIC delivery or an IPI from an ICR write.
/// Delivering it (to one or more vCPUs, possibly on other nodes) is the
/// caller's job: [`resolve_destinations`] says to whom, and
/// [`crate::LocalApic::receive`] takes it on the receiving side.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ApicMessage {
    pub vector: u8,
    pub delivery_mode: DeliveryMode,
    pub destination_mode: DestinationMode,
    /// xAPIC destination (APIC ID, or logical mask); ignored with a shorthand.
    pub destination: u8,
    pub trigger: TriggerMode,
    /// ICR level bit (1 = assert). Always true for I/O APIC messages.
    pub assert: bool,
    pub shorthand: Shorthand,
}

/// An IPI decoded from an ICR write.
pub type IpiRequest = ApicMessage;

impl ApicMessage {
    /// The legacy "INIT level de-assert" IPI (INIT, level triggered, level
    /// 0): it has no effect on Pentium 4 / AMD and later and must be ignored.
    pub fn is_init_deassert(&self) -> bool {
        self.delivery_mode == DeliveryMode::Init && self.trigger == TriggerMode::Level && !self.assert
    }
}

/// What the resolver needs to know about one vCPU's local APIC (see
/// [`crate::LocalApic::target`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ApicTarget {
    pub apic_id: u8,
    /// LDR bits 31:24.
    pub logical_id: u8,
    /// DFR model: `true` for cluster (0b0000), `false` for flat (0b1111).
    pub cluster_model: bool,
    /// `IA32_APIC_BASE.EN`: a hardware-disabled APIC receives nothing.
    pub enabled: bool,
}

/// Whether `target` is addressed by `msg`'s destination field (the
/// shorthand is not looked at here).
pub fn destination_matches(msg: &ApicMessage, target: &ApicTarget) -> bool {
    match msg.destination_mode {
        DestinationMode::Physical => msg.destination == 0xFF || msg.destination == target.apic_id,
        DestinationMode::Logical => {
            if msg.destination == 0xFF {
                true
            } else if target.cluster_model {
                (target.logical_id >> 4) == (msg.destination >> 4) && (target.logical_id & msg.destination & 0xF) != 0
            } else {
                target.logical_id & msg.destination != 0
            }
        }
    }
}

/// The indices (into `targets`) of the vCPUs `msg` goes to. `source` is
/// the index of the sending vCPU for IPIs (needed by the self shorthands;
/// `None` for I/O APIC messages). Hardware-disabled APICs are skipped. A
/// lowest-priority message without shorthand goes to the first match only.
pub fn resolve_destinations<'a>(
    msg: &'a ApicMessage,
    source: Option<usize>,
    targets: &'a [ApicTarget],
) -> impl Iterator<Item = usize> + 'a {
    let limit = if msg.delivery_mode == DeliveryMode::LowestPriority && msg.shorthand == Shorthand::None {
        1
    } else {
        usize::MAX
    };
    targets
        .iter()
        .enumerate()
        .filter(move |(i, t)| {
            t.enabled
                && match msg.shorthand {
                    Shorthand::None => destination_matches(msg, t),
                    Shorthand::SelfOnly => source == Some(*i),
                    Shorthand::AllIncludingSelf => true,
                    Shorthand::AllExcludingSelf => source != Some(*i),
                }
        })
        .map(|(i, _)| i)
        .take(limit)
}

/// Most messages one device operation can produce (one per I/O APIC pin,
/// plus slack).
pub const MAX_DELIVERIES: usize = 32;

/// A bounded list of interrupt messages produced by one device operation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Deliveries {
    len: usize,
    items: [Option<ApicMessage>; MAX_DELIVERIES],
    /// Messages lost because the list was full (never expected; counted).
    pub dropped: u32,
}

impl Default for Deliveries {
    fn default() -> Self {
        Self { len: 0, items: [None; MAX_DELIVERIES], dropped: 0 }
    }
}

impl Deliveries {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn push(&mut self, msg: ApicMessage) {
        match self.items.get_mut(self.len) {
            Some(slot) => {
                *slot = Some(msg);
                self.len += 1;
            }
            None => self.dropped = self.dropped.saturating_add(1),
        }
    }

    /// Appends all of `other`.
    pub fn extend(&mut self, other: &Deliveries) {
        for m in other.iter() {
            self.push(*m);
        }
        self.dropped = self.dropped.saturating_add(other.dropped);
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    pub fn iter(&self) -> impl Iterator<Item = &ApicMessage> {
        self.items.iter().take(self.len).flatten()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn msg(mode: DestinationMode, dest: u8, shorthand: Shorthand) -> ApicMessage {
        ApicMessage {
            vector: 0x40,
            delivery_mode: DeliveryMode::Fixed,
            destination_mode: mode,
            destination: dest,
            trigger: TriggerMode::Edge,
            assert: true,
            shorthand,
        }
    }

    fn targets() -> [ApicTarget; 4] {
        [
            ApicTarget { apic_id: 0, logical_id: 0x01, cluster_model: false, enabled: true },
            ApicTarget { apic_id: 1, logical_id: 0x02, cluster_model: false, enabled: true },
            ApicTarget { apic_id: 16, logical_id: 0x04, cluster_model: false, enabled: true },
            ApicTarget { apic_id: 17, logical_id: 0x08, cluster_model: false, enabled: false },
        ]
    }

    fn collect(m: &ApicMessage, src: Option<usize>, t: &[ApicTarget]) -> Vec<usize> {
        resolve_destinations(m, src, t).collect()
    }

    #[test]
    fn physical_and_broadcast() {
        let t = targets();
        assert_eq!(collect(&msg(DestinationMode::Physical, 16, Shorthand::None), None, &t), vec![2]);
        assert_eq!(collect(&msg(DestinationMode::Physical, 0xFF, Shorthand::None), None, &t), vec![0, 1, 2]);
        assert!(collect(&msg(DestinationMode::Physical, 17, Shorthand::None), None, &t).is_empty());
    }

    #[test]
    fn logical_flat_and_cluster() {
        let t = targets();
        assert_eq!(collect(&msg(DestinationMode::Logical, 0x05, Shorthand::None), None, &t), vec![0, 2]);
        let mut c = t;
        c[0] = ApicTarget { apic_id: 0, logical_id: 0x11, cluster_model: true, enabled: true };
        c[1] = ApicTarget { apic_id: 1, logical_id: 0x12, cluster_model: true, enabled: true };
        c[2] = ApicTarget { apic_id: 16, logical_id: 0x21, cluster_model: true, enabled: true };
        assert_eq!(collect(&msg(DestinationMode::Logical, 0x13, Shorthand::None), None, &c), vec![0, 1]);
        assert_eq!(collect(&msg(DestinationMode::Logical, 0x21, Shorthand::None), None, &c), vec![2]);
    }

    #[test]
    fn shorthands_and_lowest_priority() {
        let t = targets();
        assert_eq!(collect(&msg(DestinationMode::Physical, 0, Shorthand::SelfOnly), Some(1), &t), vec![1]);
        assert_eq!(collect(&msg(DestinationMode::Physical, 0, Shorthand::AllExcludingSelf), Some(1), &t), vec![0, 2]);
        assert_eq!(
            collect(&msg(DestinationMode::Physical, 0, Shorthand::AllIncludingSelf), Some(1), &t),
            vec![0, 1, 2]
        );
        let mut lp = msg(DestinationMode::Logical, 0x07, Shorthand::None);
        lp.delivery_mode = DeliveryMode::LowestPriority;
        assert_eq!(collect(&lp, None, &t), vec![0]);
    }

    #[test]
    fn deliveries_bounded() {
        let mut d = Deliveries::new();
        for _ in 0..MAX_DELIVERIES + 3 {
            d.push(msg(DestinationMode::Physical, 0, Shorthand::None));
        }
        assert_eq!(d.len(), MAX_DELIVERIES);
        assert_eq!(d.dropped, 3);
        assert_eq!(d.iter().count(), MAX_DELIVERIES);
    }
}
