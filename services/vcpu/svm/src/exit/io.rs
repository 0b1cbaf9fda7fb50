//! IOIO exits: `EXITINFO1` describes the access (APM vol. 2 §15.10.2),
//! `EXITINFO2` holds the RIP of the next instruction.
//!
//! That next RIP is written for IOIO exits even without nrip-save, which is
//! why Sinter can step over IN/OUT under QEMU TCG without decoding them.

/// Direction of a port access.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum IoDirection {
    /// IN/INS: the guest reads the port.
    In,
    /// OUT/OUTS: the guest writes the port.
    Out,
}

/// Width of one port access.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum IoSize {
    /// 8 bits.
    Byte = 1,
    /// 16 bits.
    Word = 2,
    /// 32 bits.
    Dword = 4,
}

impl IoSize {
    /// Bytes per access.
    pub const fn bytes(self) -> u8 {
        self as u8
    }
}

/// Address size of a string I/O instruction (INS/OUTS).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum IoAddressSize {
    /// 16-bit (SI/DI/CX).
    A16,
    /// 32-bit.
    A32,
    /// 64-bit.
    A64,
}

/// A decoded IOIO exit.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct IoAccess {
    /// The port.
    pub port: u16,
    /// Width of each access.
    pub size: IoSize,
    /// In or out.
    pub direction: IoDirection,
    /// INS/OUTS rather than IN/OUT.
    pub string: bool,
    /// A REP prefix was present.
    pub rep: bool,
    /// Address size (meaningful for string instructions).
    pub address_size: Option<IoAddressSize>,
    /// Effective segment of a string instruction (bits 12:10: 0 ES, 1 CS,
    /// 2 SS, 3 DS, 4 FS, 5 GS). Filled only with decode assists, so it is 0
    /// under TCG and the service must decode INS/OUTS itself.
    pub segment: u8,
    /// RIP of the instruction after the IN/OUT (from `EXITINFO2`).
    pub next_rip: u64,
}

/// An `EXITINFO1` the CPU should never write.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MalformedIoInfo(pub u64);

impl IoAccess {
    /// Decodes `EXITINFO1` (access) and `EXITINFO2` (next RIP).
    pub fn decode(info1: u64, info2: u64) -> Result<Self, MalformedIoInfo> {
        let bit = |n: u32| info1 & (1 << n) != 0;
        let size = match (bit(4), bit(5), bit(6)) {
            (true, false, false) => IoSize::Byte,
            (false, true, false) => IoSize::Word,
            (false, false, true) => IoSize::Dword,
            _ => return Err(MalformedIoInfo(info1)),
        };
        let address_size = match (bit(7), bit(8), bit(9)) {
            (false, false, false) => None,
            (true, false, false) => Some(IoAddressSize::A16),
            (false, true, false) => Some(IoAddressSize::A32),
            (false, false, true) => Some(IoAddressSize::A64),
            _ => return Err(MalformedIoInfo(info1)),
        };
        Ok(Self {
            port: (info1 >> 16) as u16,
            size,
            direction: if bit(0) { IoDirection::In } else { IoDirection::Out },
            string: bit(2),
            rep: bit(3),
            address_size,
            segment: ((info1 >> 10) & 7) as u8,
            next_rip: info2,
        })
    }

    /// Encodes back into `EXITINFO1` (for tests and fakes).
    pub fn encode_info1(&self) -> u64 {
        let mut v = u64::from(self.port) << 16;
        v |= match self.direction {
            IoDirection::In => 1,
            IoDirection::Out => 0,
        };
        v |= u64::from(self.string) << 2 | u64::from(self.rep) << 3;
        v |= match self.size {
            IoSize::Byte => 1 << 4,
            IoSize::Word => 1 << 5,
            IoSize::Dword => 1 << 6,
        };
        v |= match self.address_size {
            None => 0,
            Some(IoAddressSize::A16) => 1 << 7,
            Some(IoAddressSize::A32) => 1 << 8,
            Some(IoAddressSize::A64) => 1 << 9,
        };
        v | u64::from(self.segment & 7) << 10
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn out_dx_al_to_com1() {
        // QEMU's helper_svm_check_io: param = size bit | addr size bit, port << 16, IN bit.
        let info1 = (0x3f8 << 16) | (1 << 4) | (1 << 9);
        let io = IoAccess::decode(info1, 0xffff_ffff_8100_0002).unwrap();
        assert_eq!(io.port, 0x3f8);
        assert_eq!(io.size, IoSize::Byte);
        assert_eq!(io.direction, IoDirection::Out);
        assert!(!io.string && !io.rep);
        assert_eq!(io.address_size, Some(IoAddressSize::A64));
        assert_eq!(io.next_rip, 0xffff_ffff_8100_0002);
    }

    #[test]
    fn rep_insw() {
        let info1 = (0x1f0 << 16) | 1 | (1 << 2) | (1 << 3) | (1 << 5) | (1 << 8);
        let io = IoAccess::decode(info1, 0x1000).unwrap();
        assert_eq!(io.direction, IoDirection::In);
        assert!(io.string && io.rep);
        assert_eq!(io.size.bytes(), 2);
        assert_eq!(io.address_size, Some(IoAddressSize::A32));
    }

    #[test]
    fn malformed_sizes() {
        assert!(IoAccess::decode(0, 0).is_err());
        assert!(IoAccess::decode((1 << 4) | (1 << 5), 0).is_err());
        assert!(IoAccess::decode((1 << 4) | (1 << 7) | (1 << 8), 0).is_err());
    }

    proptest! {
        #[test]
        fn decode_never_panics_and_round_trips(info1 in any::<u64>(), info2 in any::<u64>()) {
            if let Ok(io) = IoAccess::decode(info1, info2) {
                let relevant = 0xffff_0000 | 0x1fff & !(1 << 1);
                prop_assert_eq!(io.encode_info1(), info1 & relevant);
                prop_assert_eq!(io.next_rip, info2);
            }
        }
    }
}
