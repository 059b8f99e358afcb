//! Who may associate: client networks, and associations per client address.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};

/// An address block, `10.1.0.0/16` or `::1/128`; a bare address is a block of one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Network {
    addr: IpAddr,
    prefix: u8,
}

impl std::str::FromStr for Network {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        let s = s.trim();
        let (addr, prefix) = match s.split_once('/') {
            Some((a, p)) => (a, Some(p)),
            None => (s, None),
        };
        let addr: IpAddr = addr
            .parse()
            .map_err(|_| format!("'{s}' is not an address or network (as 10.0.0.0/8 or ::1)"))?;
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix {
            None => max,
            Some(p) => match p.parse::<u8>() {
                Ok(p) if p <= max => p,
                _ => return Err(format!("'{s}': the prefix length must be 0 to {max}")),
            },
        };
        Ok(Network { addr, prefix })
    }
}

impl std::fmt::Display for Network {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix)
    }
}

impl Network {
    /// Whether `ip` lies in this block. An IPv4 client seen through an IPv6 socket
    /// (`::ffff:10.1.2.3`) matches IPv4 blocks.
    pub fn contains(&self, ip: IpAddr) -> bool {
        let ip = match ip {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
            v4 => v4,
        };
        match (self.addr, ip) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => {
                prefix_eq(&net.octets(), &ip.octets(), self.prefix)
            }
            (IpAddr::V6(net), IpAddr::V6(ip)) => {
                prefix_eq(&net.octets(), &ip.octets(), self.prefix)
            }
            _ => false,
        }
    }
}

/// Whether the first `bits` bits of two addresses agree.
fn prefix_eq(a: &[u8], b: &[u8], bits: u8) -> bool {
    let bits = usize::from(bits);
    let (whole, rest) = (bits / 8, bits % 8);
    if a.get(..whole) != b.get(..whole) {
        return false;
    }
    if rest == 0 {
        return true;
    }
    let mask = 0xFFu8 << (8 - rest);
    match (a.get(whole), b.get(whole)) {
        (Some(x), Some(y)) => x & mask == y & mask,
        _ => false,
    }
}

/// Associations per client address, when limited.
#[derive(Debug, Default)]
pub(crate) struct PeerCounts {
    counts: Mutex<HashMap<IpAddr, usize>>,
}

/// One association of a client address; dropping it gives the slot back.
#[derive(Debug)]
pub(crate) struct PeerSlot {
    counts: Arc<PeerCounts>,
    ip: IpAddr,
}

impl PeerCounts {
    /// Takes a slot for `ip` unless it holds `max` already.
    pub(crate) fn take(self: &Arc<Self>, ip: IpAddr, max: usize) -> Option<PeerSlot> {
        let mut counts = self.counts.lock().unwrap_or_else(|e| e.into_inner());
        let n = counts.entry(ip).or_insert(0);
        if *n >= max {
            return None;
        }
        *n += 1;
        Some(PeerSlot {
            counts: self.clone(),
            ip,
        })
    }
}

impl Drop for PeerSlot {
    fn drop(&mut self) {
        let mut counts = self.counts.counts.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(n) = counts.get_mut(&self.ip) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                counts.remove(&self.ip);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn net(s: &str) -> Network {
        s.parse().unwrap()
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn networks_match_by_prefix() {
        assert!(net("10.0.0.0/8").contains(ip("10.200.3.4")));
        assert!(!net("10.0.0.0/8").contains(ip("11.0.0.1")));
        assert!(net("192.168.1.128/25").contains(ip("192.168.1.200")));
        assert!(!net("192.168.1.128/25").contains(ip("192.168.1.127")));
        assert!(net("127.0.0.1").contains(ip("127.0.0.1")));
        assert!(!net("127.0.0.1").contains(ip("127.0.0.2")));
        assert!(net("0.0.0.0/0").contains(ip("8.8.8.8")));
        assert!(net("::1").contains(ip("::1")));
        assert!(net("fd00::/8").contains(ip("fd12::1")));
        assert!(!net("fd00::/8").contains(ip("fe80::1")));
        // An IPv4 client on a dual-stack socket.
        assert!(net("10.0.0.0/8").contains(ip("::ffff:10.1.2.3")));
        assert!(!net("::/0").contains(ip("10.1.2.3")));
    }

    #[test]
    fn bad_networks_say_why() {
        assert!("10.0.0.0/33"
            .parse::<Network>()
            .unwrap_err()
            .contains("0 to 32"));
        assert!("::/129"
            .parse::<Network>()
            .unwrap_err()
            .contains("0 to 128"));
        assert!("pacs.local"
            .parse::<Network>()
            .unwrap_err()
            .contains("not an address"));
        assert_eq!(net(" 10.1.0.0/16 ").to_string(), "10.1.0.0/16");
    }

    #[test]
    fn peer_slots_are_counted_and_given_back() {
        let counts = Arc::new(PeerCounts::default());
        let a = ip("10.0.0.1");
        let first = counts.take(a, 2).unwrap();
        let second = counts.take(a, 2).unwrap();
        assert!(counts.take(a, 2).is_none());
        assert!(counts.take(ip("10.0.0.2"), 2).is_some());
        drop(first);
        let third = counts.take(a, 2).unwrap();
        drop((second, third));
        assert!(counts.counts.lock().unwrap().is_empty());
    }
}
