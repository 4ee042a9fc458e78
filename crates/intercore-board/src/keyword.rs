//! Keywords: the enumerated values of a board file (`transport.kind = "sim"`), each an enum
//! that knows its spellings, so validation matches variants, never list positions, and an
//! unknown value is reported with every value allowed.

use intercore_linux::remoteproc::Control;

/// An enum whose every variant has one spelling in the board file.
pub(crate) trait Keyword: Copy + 'static {
    /// Every variant, in the order the allowed values are listed.
    const ALL: &'static [Self];
    /// The board file's spelling.
    fn keyword(self) -> &'static str;
    /// The variant spelled `s`.
    fn parse(s: &str) -> Option<Self> {
        Self::ALL.iter().copied().find(|k| k.keyword() == s)
    }
    /// The allowed values, quoted, comma-separated (`"sim", "userspace", "kernel"`).
    fn allowed() -> String {
        Self::ALL
            .iter()
            .map(|k| format!("{:?}", k.keyword()))
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// Defines a keyword enum: the variants with their spellings, `as_str`, `Display` and
/// [`Keyword`].
macro_rules! keyword_enum {
    (
        $(#[$m:meta])*
        $vis:vis enum $name:ident {
            $( $(#[$vm:meta])* $var:ident = $kw:literal, )+
        }
    ) => {
        $(#[$m])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        $vis enum $name {
            $( $(#[$vm])* $var, )+
        }

        impl $name {
            /// The board file's spelling.
            #[allow(dead_code)]
            $vis fn as_str(self) -> &'static str {
                match self {
                    $( $name::$var => $kw, )+
                }
            }
        }

        impl ::std::fmt::Display for $name {
            fn fmt(&self, f: &mut ::std::fmt::Formatter<'_>) -> ::std::fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl $crate::keyword::Keyword for $name {
            const ALL: &'static [Self] = &[$( $name::$var, )+];
            fn keyword(self) -> &'static str {
                self.as_str()
            }
        }
    };
}
pub(crate) use keyword_enum;

/// `remoteproc.control`.
impl Keyword for Control {
    const ALL: &'static [Self] = &[Control::Sysfs, Control::Cdev];
    fn keyword(self) -> &'static str {
        match self {
            Control::Sysfs => "sysfs",
            Control::Cdev => "cdev",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Arch, CacheKind, MappingKind, MemorySource, TransportKind};

    fn round_trip<K: Keyword + PartialEq + std::fmt::Debug>() {
        for &k in K::ALL {
            assert_eq!(K::parse(k.keyword()), Some(k));
        }
        assert_eq!(K::parse("no-such-keyword"), None);
    }

    /// Every keyword parses back from its spelling, and the lists keep the documented order
    /// (the error messages print them).
    #[test]
    fn keywords_round_trip_in_order() {
        round_trip::<Arch>();
        round_trip::<TransportKind>();
        round_trip::<MemorySource>();
        round_trip::<MappingKind>();
        round_trip::<CacheKind>();
        round_trip::<crate::model::DeviceAddress>();
        round_trip::<Control>();
        round_trip::<crate::model::FirmwareName>();
        round_trip::<crate::model::SimLayout>();
        round_trip::<crate::model::QemuCoreName>();
        assert_eq!(
            TransportKind::allowed(),
            "\"sim\", \"qemu\", \"userspace\", \"kernel\""
        );
        assert_eq!(
            MemorySource::allowed(),
            "\"memfd\", \"carveout\", \"dma-heap\", \"udmabuf\", \"u-dma-buf\", \"hugetlb\""
        );
        assert_eq!(
            MappingKind::allowed(),
            "\"identity\", \"offset\", \"vfio\", \"ti-rproc-attach\", \"sim-iommu\""
        );
        assert_eq!(
            CacheKind::allowed(),
            "\"coherent\", \"arm64-el0\", \"dma-buf\", \"u-dma-buf-sysfs\", \"sim-noncoherent\""
        );
        assert_eq!(
            crate::model::FirmwareName::allowed(),
            "\"echo\", \"offload\", \"sink\""
        );
        assert_eq!(
            crate::model::SimLayout::allowed(),
            "\"standard\", \"ti-k3\""
        );
    }
}
