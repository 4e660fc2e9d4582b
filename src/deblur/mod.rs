//! Deblurring the whole photo: Unblur's own network (`models/unblur-deblur`) run over the photo at
//! its own resolution, after repair and before face detection and super-resolution, so that the
//! detector sees sharper faces and SR enlarges detail instead of blur.
//!
//! The photo is cut into tiles like SR's ([`tiles`]: the same plan and blend weights, at 1:1, so
//! the canvas is a seamless blend), each seen with some of the photo around it ([`CONTEXT`]) and
//! padded to the network's multiple of 8. With [`DeblurMode::Auto`] the photo is first looked at
//! without the network ([`crisp`]: enough crisp edges in every direction, and it is sharp;
//! [`periodic`]: a fine structure that repeats, and it was enlarged or printed with a screen,
//! which the network would turn into a mosaic; either way no network runs, and the page never
//! fetches it); otherwise a sample of the tiles runs first and
//! the photo is deblurred only if the network changed it enough there ([`stats`]). A sharp photo
//! comes out untouched, byte for byte. [`stage::Stage`] holds these steps for
//! [`crate::RestoreJob`], which the CLI and the page drive alike.

pub mod crisp;
pub mod periodic;
pub mod stage;
pub mod stats;
pub mod tiles;

use crate::error::{Error, Result};

pub use stage::Stage;
pub use stats::Stats;

/// Tile side (photo pixels) and the overlap between neighbouring tiles. The network's receptive
/// field is wide (three downsamplings), so the tiles are larger than SR's and overlap more; the
/// plan's blend weights (zero where a tile saw its own border, a ramp across the rest of the
/// overlap) and the [`CONTEXT`] around each tile make the seams vanish.
pub const TILE: usize = 256;
pub const OVERLAP: usize = 32;

/// The network's input sides must be multiples of this (three stride-2 downsamplings).
pub const MULTIPLE: usize = 8;

/// The photo around each tile that the network also sees, in pixels on every side (a 256² tile
/// runs as 288²). The blend gives no weight to a tile's outer 8 pixels of overlap and little to
/// the next 16, but the network's field reaches ±75 pixels (v1: ±43): without this context, the output
/// there still feels the zeros its convolutions put past the tile's edge. With a linear stand-in
/// of that reach (a Wiener inverse of a 15-pixel streak, ±31 pixels), 256² tiles against one
/// piece (tests/integration/deblur.rs) measured 39.3 dB with no context, 47.4 dB with 8 pixels
/// and 72.4 dB with 16, for 1.27× the pixels of no context.
pub const CONTEXT: usize = 16;

/// How much of a large photo `auto` runs before it decides, in pixels of tiles: the decision
/// is made at the photo's own resolution (a downscaled copy would shrink the blur it is looking
/// for), on tiles spread evenly over the photo.
pub const SAMPLE_PIXELS: usize = 1_000_000;

/// The decision thresholds, calibrated by `models/deblur/evaluate.py --calibrate` on the shipped
/// model (v3: on 40 sharp and blurred training photos and 100 FFHQ training faces, which the
/// network never saw; checked on the held-out photos and faces; it measures R and A as [`stats`]
/// does). `auto` deblurs when the mean change the network makes ([`Verdict::residual`], in 8-bit
/// levels) is above `TAU_R` (1.695 calibrated: 5 % false fires and 14 % missed blurs on the
/// calibration photos and faces; held out, 2–5 % and 1–10 %).
pub const TAU_R: f32 = 1.70;
/// Where `auto` applies the network in full: between [`TAU_R`] and here it blends the deblurred
/// photo in with strength (R − τ_R)/(τ_full − τ_R) ([`Verdict::strength`]). The sharp photos that
/// fire lie just above τ_R, where a full application changes them by 32–35 dB and the bound is
/// 38. Calibrated by `evaluate.py --calibrate` (3.422): the smallest τ_full that keeps the sharp
/// calibration photos and faces that fire within 39 dB of their input, all but one of them (held
/// out, the worst fired sharp face then stays 48.8 dB from `off`, the worst photo 43.7 dB).
pub const TAU_FULL: f32 = 3.42;
/// `auto` calls a photo sharp at first look, without the network, when its share of crisp edges
/// ([`crisp::Edges::share`], the smallest of four directions') is above `TAU_CRISP`. Calibrated
/// by `evaluate.py --calibrate` (`pick_tau_crisp`): the largest share among the blurred
/// calibration photos and faces the network fires on (R > [`TAU_R`]), so that the first look
/// lets every one of those through to the network (0.00578, rounded up). It calls 54 % of the
/// sharp calibration photos and faces sharp; held out, 95 % of the sharp photos and 33 % of the
/// sharp faces (FFHQ's are softer), and none of the blurred ones (their largest share: 0.0002).
pub const TAU_CRISP: f64 = 0.0058;
/// `auto` leaves a photo to the later stages when its fine structure is periodic
/// ([`periodic::measure`] above `TAU_PERIODIC`): enlarged, or printed with a halftone screen.
/// Calibrated by `evaluate.py --calibrate` (`pick_tau_periodic`): the largest S among the
/// blurred calibration photos and faces the network fires on (18.67, rounded up), so that it
/// stops none of them. Held out, no blurred photo or face comes near (their largest S: 8.7); of
/// the 24 real dev photos and faces the network fires on, it stops the 8 that are enlarged crops
/// or halftone prints (S 45–581), where the network made a mosaic or amplified the screen.
pub const TAU_PERIODIC: f64 = 18.7;
/// Why `auto` decided without the network.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Screen {
    /// Crisp edges enough ([`TAU_CRISP`]): sharp.
    Crisp,
    /// A periodic fine structure ([`TAU_PERIODIC`]): enlarged or screen-printed.
    Periodic,
}

/// The blur is called motion blur when the sharpening gain's anisotropy
/// ([`Verdict::anisotropy`]) is above `TAU_A`, else out of focus. `None`: the anisotropy does not
/// tell them apart well enough yet (with v3 the best threshold on the calibration photos and
/// faces, 1.122, names the kind right for 66 % of them, balanced; on the held-out sets motion
/// 90 % but defocus 50–56 %), so the verdict names no kind and the page says "Sharpened:
/// blur" instead of guessing.
pub const TAU_A: Option<f32> = None;

/// Whether to deblur: `auto` (decide from a sample of the photo), `on` or `off`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase", try_from = "String")]
pub enum DeblurMode {
    #[default]
    Auto,
    On,
    Off,
}

impl DeblurMode {
    pub const ALL: [DeblurMode; 3] = [DeblurMode::Auto, DeblurMode::On, DeblurMode::Off];

    pub fn name(self) -> &'static str {
        match self {
            DeblurMode::Auto => "auto",
            DeblurMode::On => "on",
            DeblurMode::Off => "off",
        }
    }
}

impl std::fmt::Display for DeblurMode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

impl std::str::FromStr for DeblurMode {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        DeblurMode::ALL
            .into_iter()
            .find(|m| m.name().eq_ignore_ascii_case(s))
            .ok_or_else(|| Error::Invalid(format!("deblur '{s}' is not one of auto, on, off")))
    }
}

// The page sends the options as JSON: a bad value gets the same message as on the command line.
impl TryFrom<String> for DeblurMode {
    type Error = Error;
    fn try_from(s: String) -> Result<Self> {
        s.parse()
    }
}

/// What the network's change looks like: a sharpening along one direction (motion blur undone),
/// in every direction alike (focus), or a blur it cannot name (see [`TAU_A`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum BlurKind {
    Motion,
    Defocus,
    Blur,
}

impl BlurKind {
    /// Its words for people: "Sharpened: motion blur".
    pub fn label(self) -> &'static str {
        match self {
            BlurKind::Motion => "motion blur",
            BlurKind::Defocus => "out of focus",
            BlurKind::Blur => "blur",
        }
    }
}

/// The decision on one photo, and what it was made from.
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Verdict {
    /// The photo was replaced by its deblurred version.
    pub applied: bool,
    pub kind: BlurKind,
    /// Mean |deblurred − input| over the measured pixels and channels, in 8-bit levels.
    pub residual: f32,
    /// The sharpening gain's largest over smallest value across four directions (1: isotropic).
    pub anisotropy: f32,
    /// How much of the network's change the photo takes: 1 with `on`, 0 when not applied, and
    /// with `auto` rising from 0 at [`TAU_R`] to 1 at [`TAU_FULL`].
    pub strength: f32,
    /// `auto`'s first look: the photo's share of crisp edges (`None` with `on`).
    pub crisp: Option<f32>,
    /// `auto`'s second look: how periodic its fine structure is (`None` with `on`, or when the
    /// first look decided).
    pub periodic: Option<f32>,
    /// Why `auto` decided before the network ran, if it did: the residual and anisotropy were
    /// then not measured (0 and 1).
    pub screened: Option<Screen>,
}

impl Verdict {
    /// What the page and the CLI say of it: "Sharpened: motion blur", with the share when `auto`
    /// sharpened in part ("Sharpened: blur (40 %)"). Of a photo `auto` left alone because it
    /// looks enlarged or printed (soft, yet not sharpened: the one worth a word), why; `None` of
    /// any other photo not sharpened.
    pub fn summary(&self) -> Option<String> {
        if !self.applied {
            return (self.screened == Some(Screen::Periodic))
                .then(|| "Not sharpened: it looks enlarged or printed".to_string());
        }
        let part = if self.strength < 1.0 {
            // Never "(100 %)" for a part, nor "(0 %)" for a photo that was sharpened.
            format!(
                " ({} %)",
                ((self.strength * 100.0).round() as u32).clamp(1, 99)
            )
        } else {
            String::new()
        };
        Some(format!("Sharpened: {}{part}", self.kind.label()))
    }

    /// The verdict on `auto`'s looks before the network ([`Looks`]) and the network's measured
    /// statistics: `on` applies whatever they say in full; `auto` nothing when the looks screen
    /// the photo out ([`Looks::screen`]), else when the residual is above [`TAU_R`], in full from
    /// [`TAU_FULL`].
    pub fn decide(mode: DeblurMode, looks: Looks, stats: &Stats) -> Verdict {
        let (residual, anisotropy) = (stats.residual() as f32, stats.anisotropy() as f32);
        let screened = match mode {
            DeblurMode::Auto => looks.screen(),
            _ => None,
        };
        let strength = match mode {
            DeblurMode::On => 1.0,
            _ if screened.is_some() => 0.0,
            DeblurMode::Auto if residual > TAU_R => {
                ((residual - TAU_R) / (TAU_FULL - TAU_R)).min(1.0)
            }
            _ => 0.0,
        };
        Verdict {
            applied: strength > 0.0,
            strength,
            kind: match TAU_A {
                Some(t) if anisotropy > t => BlurKind::Motion,
                Some(_) => BlurKind::Defocus,
                None => BlurKind::Blur,
            },
            residual,
            anisotropy,
            crisp: looks.crisp.map(|c| c as f32),
            periodic: looks.periodic.map(|c| c as f32),
            screened,
        }
    }
}

/// What `auto` saw before any network ran (nothing with `on`).
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Looks {
    /// The share of crisp edges ([`crisp`]).
    pub crisp: Option<f64>,
    /// The periodicity ratio ([`periodic`]); not measured when the first look decided.
    pub periodic: Option<f64>,
}

impl Looks {
    /// Looks at `photo` where `regions` (photo pixels, [x, y, width, height]) lie: the crisp
    /// edges there, and, unless they decide, the periodicity of the photo's centre.
    pub fn take(photo: &crate::Rgb16Image, regions: impl Iterator<Item = [usize; 4]>) -> Looks {
        let mut edges = crisp::Edges::default();
        for r in regions {
            edges.add(&crisp::Edges::measure(photo, r));
        }
        let crisp = edges.share();
        let periodic = (crisp <= TAU_CRISP).then(|| periodic::measure(photo));
        Looks {
            crisp: Some(crisp),
            periodic,
        }
    }

    /// Why these looks decide the photo without the network, if they do.
    pub fn screen(&self) -> Option<Screen> {
        if self.crisp.is_some_and(|c| c > TAU_CRISP) {
            Some(Screen::Crisp)
        } else if self.periodic.is_some_and(|p| p > TAU_PERIODIC) {
            Some(Screen::Periodic)
        } else {
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn auto_blends_in_part_just_above_its_threshold_and_in_full_from_tau_full() {
        let at = |r: f32| {
            let mut s = Stats::default();
            s.set_residual_for_test(r);
            (
                Verdict::decide(DeblurMode::Auto, looks(0.0, 0.0), &s),
                Verdict::decide(DeblurMode::On, Looks::default(), &s),
            )
        };
        let (below, on) = at(TAU_R * 0.99);
        assert!(!below.applied && below.strength == 0.0, "{below:?}");
        assert!(on.applied && on.strength == 1.0, "{on:?}");
        let (half, _) = at((TAU_R + TAU_FULL) / 2.0);
        assert!(
            half.applied && (half.strength - 0.5).abs() < 1e-3,
            "{half:?}"
        );
        let (full, _) = at(TAU_FULL * 1.5);
        assert_eq!(full.strength, 1.0, "{full:?}");
        const { assert!(TAU_FULL > TAU_R) };
    }

    fn looks(crisp: f64, periodic: f64) -> Looks {
        Looks {
            crisp: Some(crisp),
            periodic: Some(periodic),
        }
    }

    #[test]
    fn auto_leaves_a_photo_with_crisp_edges_or_a_periodic_grain_alone_whatever_the_residual() {
        let mut s = Stats::default();
        s.set_residual_for_test(TAU_FULL * 2.0);
        let crisp = Verdict::decide(DeblurMode::Auto, looks(TAU_CRISP * 1.01, 0.0), &s);
        assert!(
            crisp.screened == Some(Screen::Crisp) && !crisp.applied && crisp.strength == 0.0,
            "{crisp:?}"
        );
        assert_eq!(crisp.summary(), None);
        let periodic = Verdict::decide(DeblurMode::Auto, looks(0.0, TAU_PERIODIC * 1.01), &s);
        assert!(
            periodic.screened == Some(Screen::Periodic) && !periodic.applied,
            "{periodic:?}"
        );
        assert_eq!(
            periodic.summary().unwrap(),
            "Not sharpened: it looks enlarged or printed"
        );
        let soft = Verdict::decide(DeblurMode::Auto, looks(TAU_CRISP, TAU_PERIODIC), &s);
        assert!(
            soft.screened.is_none() && soft.applied && soft.strength == 1.0,
            "{soft:?}"
        );
        // `on` does not look first.
        let on = Verdict::decide(DeblurMode::On, looks(1.0, 1e9), &s);
        assert!(on.screened.is_none() && on.applied, "{on:?}");
        let j = serde_json::to_value(periodic).unwrap();
        assert_eq!(j["screened"], "periodic");
    }

    #[test]
    fn the_mode_parses_and_a_bad_one_names_the_allowed_values() {
        assert_eq!("auto".parse::<DeblurMode>().unwrap(), DeblurMode::Auto);
        assert_eq!("ON".parse::<DeblurMode>().unwrap(), DeblurMode::On);
        let e = "sideways".parse::<DeblurMode>().unwrap_err().to_string();
        assert!(e.contains("sideways") && e.contains("auto, on, off"), "{e}");
        // As JSON, the page's way.
        let m: DeblurMode = serde_json::from_str("\"off\"").unwrap();
        assert_eq!(m, DeblurMode::Off);
        assert_eq!(serde_json::to_string(&DeblurMode::On).unwrap(), "\"on\"");
        let e = serde_json::from_str::<DeblurMode>("\"sideways\"")
            .unwrap_err()
            .to_string();
        assert!(e.contains("auto, on, off"), "{e}");
        assert_eq!(DeblurMode::default(), DeblurMode::Auto);
    }

    #[test]
    fn the_verdict_serialises_with_its_kind_in_lowercase() {
        let v = Verdict {
            applied: true,
            kind: BlurKind::Motion,
            residual: 3.5,
            anisotropy: 2.0,
            strength: 1.0,
            crisp: None,
            periodic: None,
            screened: None,
        };
        let j = serde_json::to_value(v).unwrap();
        assert_eq!(j["kind"], "motion");
        assert_eq!(j["applied"], true);
        assert_eq!(BlurKind::Defocus.label(), "out of focus");
        let v = |applied, strength| Verdict {
            applied,
            strength,
            kind: BlurKind::Motion,
            residual: 3.0,
            anisotropy: 2.0,
            crisp: Some(0.0),
            periodic: Some(0.0),
            screened: None,
        };
        assert_eq!(v(true, 1.0).summary().unwrap(), "Sharpened: motion blur");
        assert_eq!(
            v(true, 0.404).summary().unwrap(),
            "Sharpened: motion blur (40 %)"
        );
        assert_eq!(
            v(true, 0.999).summary().unwrap(),
            "Sharpened: motion blur (99 %)"
        );
        assert_eq!(
            v(true, 0.001).summary().unwrap(),
            "Sharpened: motion blur (1 %)"
        );
        assert_eq!(v(false, 0.0).summary(), None);
        // No kind is named while the anisotropy cannot tell them apart.
        if TAU_A.is_none() {
            let v = Verdict::decide(DeblurMode::On, Looks::default(), &Stats::default());
            assert_eq!((v.kind, v.kind.label()), (BlurKind::Blur, "blur"));
        }
    }
}
