//! Classification of IP addresses and host names that a fetch must never reach: loopback,
//! private, link-local, cloud metadata, and every range that is not public unicast.
//!
//! IPv6 forms that carry an IPv4 address (mapped `::ffff:a.b.c.d`, compatible `::a.b.c.d`,
//! NAT64 `64:ff9b::a.b.c.d`, 6to4 `2002:aabb:ccdd::`) are judged by the IPv4 address inside.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// Why an address is not reachable by a fetch.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum BlockReason {
    /// `127.0.0.0/8`, `::1`, `localhost`.
    Loopback,
    /// RFC 1918 (`10/8`, `172.16/12`, `192.168/16`) and the deprecated IPv6 site-local `fec0::/10`.
    Private,
    /// Carrier-grade NAT, `100.64.0.0/10`.
    SharedAddressSpace,
    /// IPv6 unique-local, `fc00::/7`.
    UniqueLocal,
    /// `169.254.0.0/16`, `fe80::/10`.
    LinkLocal,
    /// Cloud instance metadata services (`169.254.169.254`, `fd00:ec2::254`,
    /// `metadata.google.internal`, ...).
    Metadata,
    /// `0.0.0.0/8`, `::`.
    Unspecified,
    /// `224.0.0.0/4`, `ff00::/8`.
    Multicast,
    /// `255.255.255.255`.
    Broadcast,
    /// `192.0.2/24`, `198.51.100/24`, `203.0.113/24`, `2001:db8::/32`, `3fff::/20`.
    Documentation,
    /// Any other special-purpose or unassigned range (benchmarking, protocol assignments,
    /// `240/4`, IPv6 outside `2000::/3`, Teredo, ...).
    Reserved,
}

impl BlockReason {
    /// Whether `fetch.allow_private_hosts` lifts this block. Metadata, unspecified, multicast,
    /// broadcast, documentation and reserved addresses stay blocked whatever the setting.
    pub fn is_private_network(self) -> bool {
        matches!(
            self,
            BlockReason::Loopback
                | BlockReason::Private
                | BlockReason::SharedAddressSpace
                | BlockReason::UniqueLocal
                | BlockReason::LinkLocal
        )
    }

    /// A short lowercase name (`loopback`, `private`, `metadata`, ...).
    pub fn as_str(self) -> &'static str {
        match self {
            BlockReason::Loopback => "loopback",
            BlockReason::Private => "private",
            BlockReason::SharedAddressSpace => "shared address space (carrier-grade nat)",
            BlockReason::UniqueLocal => "unique-local",
            BlockReason::LinkLocal => "link-local",
            BlockReason::Metadata => "cloud metadata",
            BlockReason::Unspecified => "unspecified",
            BlockReason::Multicast => "multicast",
            BlockReason::Broadcast => "broadcast",
            BlockReason::Documentation => "documentation",
            BlockReason::Reserved => "reserved",
        }
    }
}

impl fmt::Display for BlockReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Instance metadata endpoints of the common clouds (AWS, GCP, Azure, OpenStack, Oracle: the
/// link-local one; ECS and EKS task credentials; Alibaba Cloud).
const METADATA_V4: &[Ipv4Addr] = &[
    Ipv4Addr::new(169, 254, 169, 254),
    Ipv4Addr::new(169, 254, 170, 2),
    Ipv4Addr::new(169, 254, 170, 23),
    Ipv4Addr::new(100, 100, 100, 200),
];

/// IPv6 metadata endpoints (AWS Nitro instance metadata and EKS pod identity).
const METADATA_V6: &[Ipv6Addr] = &[
    Ipv6Addr::new(0xfd00, 0x0ec2, 0, 0, 0, 0, 0, 0x0254),
    Ipv6Addr::new(0xfd00, 0x0ec2, 0, 0, 0, 0, 0, 0x0023),
];

/// Host names of metadata services, blocked before any resolution.
const METADATA_NAMES: &[&str] = &[
    "metadata.google.internal",
    "metadata.goog",
    "metadata",
    "instance-data",
    "instance-data.ec2.internal",
];

/// Why `ip` must not be fetched, or `None` for a public unicast address.
pub fn classify_ip(ip: IpAddr) -> Option<BlockReason> {
    match ip {
        IpAddr::V4(v4) => classify_v4(v4),
        IpAddr::V6(v6) => classify_v6(v6),
    }
}

fn in_v4(ip: Ipv4Addr, net: [u8; 4], prefix: u32) -> bool {
    let mask = if prefix == 0 {
        0
    } else {
        u32::MAX << (32 - prefix)
    };
    (u32::from(ip) & mask) == (u32::from(Ipv4Addr::from(net)) & mask)
}

fn classify_v4(ip: Ipv4Addr) -> Option<BlockReason> {
    if METADATA_V4.contains(&ip) {
        return Some(BlockReason::Metadata);
    }
    let ranges: &[([u8; 4], u32, BlockReason)] = &[
        ([0, 0, 0, 0], 8, BlockReason::Unspecified),
        ([10, 0, 0, 0], 8, BlockReason::Private),
        ([100, 64, 0, 0], 10, BlockReason::SharedAddressSpace),
        ([127, 0, 0, 0], 8, BlockReason::Loopback),
        ([169, 254, 0, 0], 16, BlockReason::LinkLocal),
        ([172, 16, 0, 0], 12, BlockReason::Private),
        ([192, 0, 0, 0], 24, BlockReason::Reserved),
        ([192, 0, 2, 0], 24, BlockReason::Documentation),
        ([192, 88, 99, 0], 24, BlockReason::Reserved),
        ([192, 168, 0, 0], 16, BlockReason::Private),
        ([198, 18, 0, 0], 15, BlockReason::Reserved),
        ([198, 51, 100, 0], 24, BlockReason::Documentation),
        ([203, 0, 113, 0], 24, BlockReason::Documentation),
        ([224, 0, 0, 0], 4, BlockReason::Multicast),
        ([255, 255, 255, 255], 32, BlockReason::Broadcast),
        ([240, 0, 0, 0], 4, BlockReason::Reserved),
    ];
    ranges
        .iter()
        .find(|(net, prefix, _)| in_v4(ip, *net, *prefix))
        .map(|(_, _, reason)| *reason)
}

fn in_v6(ip: Ipv6Addr, net: [u16; 8], prefix: u32) -> bool {
    let mask = if prefix == 0 {
        0
    } else {
        u128::MAX << (128 - prefix)
    };
    (u128::from(ip) & mask) == (u128::from(Ipv6Addr::from(net)) & mask)
}

/// The IPv4 address in the low 32 bits.
fn low_v4(ip: Ipv6Addr) -> Ipv4Addr {
    Ipv4Addr::from((u128::from(ip) & 0xffff_ffff) as u32)
}

fn classify_v6(ip: Ipv6Addr) -> Option<BlockReason> {
    if ip.is_unspecified() {
        return Some(BlockReason::Unspecified);
    }
    if ip.is_loopback() {
        return Some(BlockReason::Loopback);
    }
    if METADATA_V6.contains(&ip) {
        return Some(BlockReason::Metadata);
    }
    // IPv4-mapped ::ffff:0:0/96: connecting reaches the IPv4 address itself.
    if in_v6(ip, [0, 0, 0, 0, 0, 0xffff, 0, 0], 96) {
        return classify_v4(low_v4(ip));
    }
    // IPv4-compatible ::/96 (deprecated): never a legitimate public destination.
    if in_v6(ip, [0; 8], 96) {
        return Some(classify_v4(low_v4(ip)).unwrap_or(BlockReason::Reserved));
    }
    // IPv4/IPv6 translation (NAT64): judged by the IPv4 address it reaches.
    if in_v6(ip, [0x64, 0xff9b, 0, 0, 0, 0, 0, 0], 96) {
        return classify_v4(low_v4(ip));
    }
    // 6to4 2002::/16 embeds an IPv4 address in bits 16..48.
    if in_v6(ip, [0x2002, 0, 0, 0, 0, 0, 0, 0], 16) {
        let embedded = ((u128::from(ip) >> 80) & 0xffff_ffff) as u32;
        return classify_v4(Ipv4Addr::from(embedded));
    }
    let ranges: &[([u16; 8], u32, BlockReason)] = &[
        ([0xff00, 0, 0, 0, 0, 0, 0, 0], 8, BlockReason::Multicast),
        ([0xfe80, 0, 0, 0, 0, 0, 0, 0], 10, BlockReason::LinkLocal),
        ([0xfec0, 0, 0, 0, 0, 0, 0, 0], 10, BlockReason::Private),
        ([0xfc00, 0, 0, 0, 0, 0, 0, 0], 7, BlockReason::UniqueLocal),
        (
            [0x2001, 0x0db8, 0, 0, 0, 0, 0, 0],
            32,
            BlockReason::Documentation,
        ),
        (
            [0x3fff, 0, 0, 0, 0, 0, 0, 0],
            20,
            BlockReason::Documentation,
        ),
        // IETF protocol assignments, Teredo (whose inner address is obfuscated), ORCHID.
        ([0x2001, 0, 0, 0, 0, 0, 0, 0], 23, BlockReason::Reserved),
        ([0x64, 0xff9b, 1, 0, 0, 0, 0, 0], 48, BlockReason::Reserved),
        ([0x0100, 0, 0, 0, 0, 0, 0, 0], 64, BlockReason::Reserved),
    ];
    if let Some((_, _, reason)) = ranges
        .iter()
        .find(|(net, prefix, _)| in_v6(ip, *net, *prefix))
    {
        return Some(*reason);
    }
    // Only 2000::/3 is allocated as global unicast.
    if !in_v6(ip, [0x2000, 0, 0, 0, 0, 0, 0, 0], 3) {
        return Some(BlockReason::Reserved);
    }
    None
}

/// Why a host *name* must not be fetched before it is even resolved: `localhost` and its
/// subdomains, and the names of metadata services. `name` is compared case-insensitively,
/// without a trailing dot.
pub fn classify_host_name(name: &str) -> Option<BlockReason> {
    let lower = name.trim_end_matches('.').to_ascii_lowercase();
    if METADATA_NAMES.contains(&lower.as_str()) {
        return Some(BlockReason::Metadata);
    }
    if lower == "localhost" || lower.ends_with(".localhost") {
        return Some(BlockReason::Loopback);
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn v4(text: &str) -> Option<BlockReason> {
        classify_ip(text.parse().expect("ip"))
    }

    #[test]
    fn ipv4_ranges() {
        for (addr, reason) in [
            ("127.0.0.1", BlockReason::Loopback),
            ("127.255.1.2", BlockReason::Loopback),
            ("10.1.2.3", BlockReason::Private),
            ("172.16.0.1", BlockReason::Private),
            ("172.31.255.255", BlockReason::Private),
            ("192.168.1.1", BlockReason::Private),
            ("100.64.0.1", BlockReason::SharedAddressSpace),
            ("100.127.255.254", BlockReason::SharedAddressSpace),
            ("169.254.1.1", BlockReason::LinkLocal),
            ("169.254.169.254", BlockReason::Metadata),
            ("100.100.100.200", BlockReason::Metadata),
            ("0.0.0.0", BlockReason::Unspecified),
            ("0.1.2.3", BlockReason::Unspecified),
            ("224.0.0.1", BlockReason::Multicast),
            ("239.255.255.250", BlockReason::Multicast),
            ("255.255.255.255", BlockReason::Broadcast),
            ("192.0.2.7", BlockReason::Documentation),
            ("198.51.100.7", BlockReason::Documentation),
            ("203.0.113.7", BlockReason::Documentation),
            ("198.18.0.1", BlockReason::Reserved),
            ("240.0.0.1", BlockReason::Reserved),
        ] {
            assert_eq!(v4(addr), Some(reason), "{addr}");
        }
        for public in [
            "8.8.8.8",
            "1.1.1.1",
            "172.15.255.255",
            "172.32.0.0",
            "100.63.255.255",
            "100.128.0.0",
            "93.184.216.34",
            "192.169.0.1",
        ] {
            assert_eq!(v4(public), None, "{public}");
        }
    }

    #[test]
    fn ipv6_ranges() {
        for (addr, reason) in [
            ("::1", BlockReason::Loopback),
            ("::", BlockReason::Unspecified),
            ("fe80::1", BlockReason::LinkLocal),
            ("febf::1", BlockReason::LinkLocal),
            ("fc00::1", BlockReason::UniqueLocal),
            ("fd12:3456::1", BlockReason::UniqueLocal),
            ("fd00:ec2::254", BlockReason::Metadata),
            ("ff02::1", BlockReason::Multicast),
            ("2001:db8::1", BlockReason::Documentation),
            ("2001::1", BlockReason::Reserved),
            ("::ffff:127.0.0.1", BlockReason::Loopback),
            ("::ffff:10.0.0.1", BlockReason::Private),
            ("::ffff:169.254.169.254", BlockReason::Metadata),
            ("::127.0.0.1", BlockReason::Loopback),
            ("::8.8.8.8", BlockReason::Reserved),
            ("64:ff9b::192.168.0.1", BlockReason::Private),
            ("2002:7f00:1::", BlockReason::Loopback),
            ("2002:a9fe:a9fe::1", BlockReason::Metadata),
            ("100::1", BlockReason::Reserved),
            ("4000::1", BlockReason::Reserved),
        ] {
            assert_eq!(v4(addr), Some(reason), "{addr}");
        }
        for public in [
            "2606:4700:4700::1111",
            "2a00:1450:4001:80b::200e",
            "::ffff:8.8.8.8",
            "64:ff9b::808:808",
            "2002:808:808::1",
        ] {
            assert_eq!(v4(public), None, "{public}");
        }
    }

    #[test]
    fn host_names() {
        assert_eq!(classify_host_name("localhost"), Some(BlockReason::Loopback));
        assert_eq!(
            classify_host_name("API.LocalHost."),
            Some(BlockReason::Loopback)
        );
        assert_eq!(
            classify_host_name("metadata.google.internal."),
            Some(BlockReason::Metadata)
        );
        assert_eq!(classify_host_name("docs.rs"), None);
        assert_eq!(classify_host_name("notlocalhost.com"), None);
    }

    #[test]
    fn escape_hatch_scope() {
        assert!(BlockReason::Private.is_private_network());
        assert!(BlockReason::Loopback.is_private_network());
        assert!(!BlockReason::Metadata.is_private_network());
        assert!(!BlockReason::Multicast.is_private_network());
    }

    proptest! {
        #[test]
        fn mapped_and_nat64_forms_agree_with_ipv4(bits in any::<u32>()) {
            let ip = Ipv4Addr::from(bits);
            let mapped = IpAddr::V6(ip.to_ipv6_mapped());
            prop_assert_eq!(classify_ip(mapped), classify_ip(IpAddr::V4(ip)));
            let nat64 = Ipv6Addr::from((0x0064_ff9b_u128 << 96) | u128::from(bits));
            prop_assert_eq!(classify_ip(IpAddr::V6(nat64)), classify_ip(IpAddr::V4(ip)));
        }

        #[test]
        fn private_ipv4_blocks_are_blocked(a in 0u8..=255, b in 0u8..=255, c in 0u8..=255) {
            for ip in [
                Ipv4Addr::new(10, a, b, c),
                Ipv4Addr::new(127, a, b, c),
                Ipv4Addr::new(192, 168, a, b),
                Ipv4Addr::new(172, 16 + (a % 16), b, c),
                Ipv4Addr::new(169, 254, a, b),
                Ipv4Addr::new(100, 64 + (a % 64), b, c),
            ] {
                prop_assert!(classify_ip(IpAddr::V4(ip)).is_some(), "{}", ip);
            }
        }

        #[test]
        fn std_special_addresses_are_blocked(bits in any::<u32>()) {
            let ip = Ipv4Addr::from(bits);
            if ip.is_loopback() || ip.is_private() || ip.is_link_local() || ip.is_multicast()
                || ip.is_broadcast() || ip.is_unspecified() || ip.is_documentation()
            {
                prop_assert!(classify_ip(IpAddr::V4(ip)).is_some(), "{}", ip);
            }
        }

        #[test]
        fn unique_local_and_link_local_v6_are_blocked(low in any::<u128>()) {
            let ula = Ipv6Addr::from((0xfc00_u128 << 112) | (low >> 7));
            let link = Ipv6Addr::from((0xfe80_u128 << 112) | (low >> 10));
            prop_assert!(classify_ip(IpAddr::V6(ula)).is_some());
            prop_assert!(classify_ip(IpAddr::V6(link)).is_some());
        }
    }
}
