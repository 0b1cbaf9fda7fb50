//! Small value types that appear in configs as strings.

use core::fmt;
use serde::de::{Error as _, Visitor};
use serde::{Deserialize, Deserializer};

/// An Ethernet MAC address, written `52:54:00:12:34:56`.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct MacAddr(pub [u8; 6]);

impl MacAddr {
    pub fn parse(text: &str) -> Result<Self, &'static str> {
        let mut bytes = [0u8; 6];
        let mut parts = text.split(':');
        for byte in &mut bytes {
            let part = parts.next().ok_or("expected six hex octets like 52:54:00:12:34:56")?;
            if part.len() != 2 {
                return Err("expected six hex octets like 52:54:00:12:34:56");
            }
            *byte = u8::from_str_radix(part, 16).map_err(|_| "octet is not hexadecimal")?;
        }
        if parts.next().is_some() {
            return Err("expected six hex octets like 52:54:00:12:34:56");
        }
        Ok(Self(bytes))
    }

    /// Group addresses cannot identify a node.
    pub fn is_unicast(&self) -> bool {
        self.0[0] & 1 == 0
    }
}

impl fmt::Display for MacAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let b = self.0;
        write!(f, "{:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}", b[0], b[1], b[2], b[3], b[4], b[5])
    }
}

impl fmt::Debug for MacAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl<'de> Deserialize<'de> for MacAddr {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = MacAddr;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a MAC address string like \"52:54:00:12:34:56\"")
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<MacAddr, E> {
                MacAddr::parse(v).map_err(|why| E::custom(alloc::format!("invalid MAC `{v}`: {why}")))
            }
        }
        d.deserialize_str(V)
    }
}

/// The 256-bit key that authenticates cluster traffic, written as 64 hex digits.
#[derive(Clone, PartialEq, Eq)]
pub struct ClusterKey(pub [u8; 32]);

impl fmt::Debug for ClusterKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Never print the secret itself.
        f.write_str("ClusterKey(<redacted>)")
    }
}

impl<'de> Deserialize<'de> for ClusterKey {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = alloc::string::String::deserialize(d)?;
        let text = text.trim();
        if text.len() != 64 {
            return Err(D::Error::custom(alloc::format!(
                "cluster key must be 64 hex digits (256 bits), got {} characters",
                text.len()
            )));
        }
        let mut key = [0u8; 32];
        for (i, byte) in key.iter_mut().enumerate() {
            let pair = &text[2 * i..2 * i + 2];
            *byte = u8::from_str_radix(pair, 16)
                .map_err(|_| D::Error::custom(alloc::format!("cluster key: `{pair}` is not hexadecimal")))?;
        }
        Ok(Self(key))
    }
}

/// An IPv4 address with its prefix length, written `10.77.0.1/24`.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Ipv4Net {
    pub addr: [u8; 4],
    pub prefix: u8,
}

impl Ipv4Net {
    pub fn parse(text: &str) -> Result<Self, &'static str> {
        const SHAPE: &str = "expected an IPv4 address with a prefix length, like 10.77.0.1/24";
        let (addr_text, prefix_text) = text.split_once('/').ok_or(SHAPE)?;
        let mut addr = [0u8; 4];
        let mut parts = addr_text.split('.');
        for byte in &mut addr {
            let part = parts.next().ok_or(SHAPE)?;
            if part.is_empty() || part.len() > 3 || !part.bytes().all(|b| b.is_ascii_digit()) {
                return Err(SHAPE);
            }
            *byte = part.parse().map_err(|_| "an octet is larger than 255")?;
        }
        if parts.next().is_some() {
            return Err(SHAPE);
        }
        if prefix_text.is_empty() || prefix_text.len() > 2 || !prefix_text.bytes().all(|b| b.is_ascii_digit()) {
            return Err(SHAPE);
        }
        let prefix: u8 = prefix_text.parse().map_err(|_| SHAPE)?;
        if prefix > 32 {
            return Err("the prefix length is larger than 32");
        }
        Ok(Self { addr, prefix })
    }

    /// The network mask as a number.
    pub fn mask(&self) -> u32 {
        if self.prefix == 0 {
            0
        } else {
            u32::MAX << (32 - u32::from(self.prefix.min(32)))
        }
    }

    pub fn addr_u32(&self) -> u32 {
        u32::from_be_bytes(self.addr)
    }

    /// The network address (host bits zero).
    pub fn network(&self) -> u32 {
        self.addr_u32() & self.mask()
    }

    /// The subnet's broadcast address.
    pub fn broadcast(&self) -> u32 {
        self.network() | !self.mask()
    }

    /// Same network and prefix length.
    pub fn same_subnet(&self, other: &Ipv4Net) -> bool {
        self.prefix == other.prefix && self.network() == other.network()
    }
}

impl fmt::Display for Ipv4Net {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let [a, b, c, d] = self.addr;
        write!(f, "{a}.{b}.{c}.{d}/{}", self.prefix)
    }
}

impl fmt::Debug for Ipv4Net {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl<'de> Deserialize<'de> for Ipv4Net {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = alloc::string::String::deserialize(d)?;
        Ipv4Net::parse(text.trim())
            .map_err(|why| D::Error::custom(alloc::format!("invalid management address `{text}`: {why}")))
    }
}
