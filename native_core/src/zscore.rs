//! Exact rolling z-score over the last `window` values.
//!
//! `z = (x - mean) / std` over the window (population std, newest value `x` included). Every finite
//! `f64` is `m * 2^e` exactly, so after scaling all window values by a common `2^k` they are
//! integers, and with `n` values, `S = Σ x·2^k` and `Q = Σ (x·2^k)²`:
//!
//! ```text
//!     z = num / sqrt(var)      num = n·x·2^k - S,   var = n·Q - S²   (exactly; var == 0 → undefined)
//! ```
//!
//! `S` and `Q` are kept *exactly*, so there is no drift however long the stream runs.
//!
//! * **Fast mode**: `S` is `i64` and `Q` is `i128`. The invariant `Q <= q_limit = 2^124 / window`
//!   gives `n·Q <= 2^124` and, by Cauchy–Schwarz, `S² <= n·Q`, so `|S| <= 2^62` and `var` cannot
//!   overflow; scaled values are below `2^62` in magnitude, so `|num| <= 2^94` (`window <= 2^32`).
//!   Updates that keep the invariant use plain arithmetic (no overflow is possible), checked
//!   against `q_limit`. `update_many` runs its steady state in tight loops over locals, on `i64`
//!   alone while `Q <= 2^62 / window` (0.25-grid MES prices: always).
//! * **Raising the scale**: a value with more fractional bits than `k` shifts `S`, `Q` left
//!   (checked). A rebuild from the ring buffer is then scheduled for when the window has fully
//!   turned over, which brings `k` back down to what the window needs (amortised O(1)).
//! * **Big mode**: anything that would break the fast invariant (huge or very finely scaled values)
//!   moves `S`, `Q` to `BigInt`. A rebuild is attempted each time the window has fully turned over
//!   since, returning to fast mode as soon as the window allows.
//!
//! The float `value` is `fl(fl(num) / fl(sqrt(fl(var))))`: four roundings of relative size at most
//! `2^-53` each (the one inside the square root counts half). In big mode `num` and `var` are first
//! truncated to their top 64 bits (shifted by `s` and `2s` bits, adding under `2^-62`), so huge or
//! tiny inputs never produce inf or NaN. Either way `|value - z| <= 4·2^-53·|z|` (< 5e-16
//! relative) whenever the result is a normal `f64`; `|z| <= sqrt(n-1)` always.

use std::fmt;

use num_bigint::{BigInt, BigUint};
use num_traits::{Signed, ToPrimitive, Zero};

/// Largest accepted window (keeps `n·|x·2^k| < 2^94` inside `i128` in fast mode).
pub const MAX_WINDOW: usize = 1 << 32;

/// Scaled values in fast mode stay strictly below this magnitude.
const TWO_62: f64 = 4_611_686_018_427_387_904.0;
/// Scaled values in `update_many`'s narrow (all-`i64`) loop stay below this magnitude.
const TWO_31: f64 = 2_147_483_648.0;
/// `1.5·2^52`: adding it to `|y| < 2^51` rounds `y` to an integer held in the low mantissa bits.
const MAGIC: f64 = 6_755_399_441_055_744.0;
/// `MAGIC`'s bits: `bits(y + MAGIC) - MAGIC_BITS = y` for an integer `|y| < 2^51`.
const MAGIC_BITS: i64 = 0x4338_0000_0000_0000;
/// Values per block in `update_many`'s loops (the variances of a block wait on the stack).
const BLOCK: usize = 256;
/// Values per group in the bounded narrow kernel: their sums, then their divisions (4, 8 and
/// 16 measured the same).
const GROUP: usize = 4;
/// `rebuild_at` when no rebuild is scheduled.
const NEVER: u64 = u64::MAX;

/// Why an argument or input was refused. No state changes when an error is returned.
#[derive(Debug, Clone, PartialEq)]
pub enum ZScoreError {
    /// `window` outside `1..=MAX_WINDOW`.
    InvalidWindow { window: usize },
    /// `min_periods` outside `1..=window`.
    InvalidMinPeriods { min_periods: usize, window: usize },
    /// A NaN or infinite input to `update`/`update_exact`.
    NonFinite { value: f64 },
    /// The first NaN or infinite input of an `update_many` batch.
    NonFiniteAt { index: usize, value: f64 },
    /// `update_many` output slice of the wrong length.
    LengthMismatch { input: usize, output: usize },
}

impl fmt::Display for ZScoreError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::InvalidWindow { window } => {
                write!(f, "window must be between 1 and {MAX_WINDOW}, got {window}")
            }
            Self::InvalidMinPeriods {
                min_periods,
                window,
            } => write!(
                f,
                "min_periods must be between 1 and window ({window}), got {min_periods}"
            ),
            Self::NonFinite { value } => {
                write!(
                    f,
                    "z-score input must be finite, got {value}; state unchanged"
                )
            }
            Self::NonFiniteAt { index, value } => write!(
                f,
                "z-score input at index {index} is not finite ({value}); no value was applied"
            ),
            Self::LengthMismatch { input, output } => write!(
                f,
                "output length {output} does not match input length {input}"
            ),
        }
    }
}

impl std::error::Error for ZScoreError {}

/// An exact integer from the engine: `i128` in fast mode, `BigInt` otherwise.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ExactInt {
    Small(i128),
    Big(BigInt),
}

impl ExactInt {
    /// The value as a `BigInt` (allocates).
    pub fn to_bigint(&self) -> BigInt {
        match self {
            Self::Small(v) => BigInt::from(*v),
            Self::Big(v) => v.clone(),
        }
    }

    /// The value as `i64` when it fits (the cheap case for a binding).
    pub fn as_i64(&self) -> Option<i64> {
        match self {
            Self::Small(v) => i64::try_from(*v).ok(),
            Self::Big(v) => v.to_i64(),
        }
    }
}

/// `z = num / sqrt(var)` exactly (`var > 0`), with `value` the float within `4·2^-53·|z|` of it.
#[derive(Debug, Clone, PartialEq)]
pub struct Exact {
    pub value: f64,
    pub num: ExactInt,
    pub var: ExactInt,
}

#[derive(Debug, Clone)]
struct BigSums {
    s: BigInt,
    q: BigInt,
}

/// The outcome of one push: what is needed to produce either a float or an exact result.
enum Step {
    Undefined,
    Fast { num: i128, var: i128 },
    Big { num: BigInt, var: BigInt },
}

/// Exact rolling z-score; see the module documentation for the design.
#[derive(Debug, Clone)]
pub struct RollingZScore {
    window: usize,
    min_periods: usize,
    /// Raw window values; grows to `window`, then is overwritten in place at `head`.
    ring: Vec<f64>,
    /// When the ring is full: index of the oldest value.
    head: usize,
    /// Scale exponent: every window value times `2^k` is an integer.
    k: u32,
    /// `2^k` as `f64`, or NaN when `k > 1023` (which sends every update to the general path).
    scale: f64,
    /// Fast-mode sums (meaningless while `big` is set). `|S| <= 2^62` follows from the invariant.
    s: i64,
    q: i128,
    q_limit: i128,
    /// `2^62 / window`: below it `update_many` can run on `i64` arithmetic.
    q_narrow_limit: i128,
    big: Option<Box<BigSums>>,
    /// Values pushed since construction or reset.
    pushes: u64,
    /// Push count at which to rebuild the sums from the ring buffer.
    rebuild_at: u64,
}

impl RollingZScore {
    /// A z-score over the last `window` values, defined once `min_periods` (default `window`)
    /// values have been seen.
    pub fn new(window: usize, min_periods: Option<usize>) -> Result<Self, ZScoreError> {
        if window == 0 || window > MAX_WINDOW {
            return Err(ZScoreError::InvalidWindow { window });
        }
        let min_periods = min_periods.unwrap_or(window);
        if min_periods == 0 || min_periods > window {
            return Err(ZScoreError::InvalidMinPeriods {
                min_periods,
                window,
            });
        }
        Ok(Self {
            window,
            min_periods,
            ring: Vec::with_capacity(window.min(1 << 16)),
            head: 0,
            k: 0,
            scale: 1.0,
            s: 0,
            q: 0,
            q_limit: (1_i128 << 124) / window as i128,
            q_narrow_limit: (1_i128 << 62) / window as i128,
            big: None,
            pushes: 0,
            rebuild_at: NEVER,
        })
    }

    pub fn window(&self) -> usize {
        self.window
    }

    pub fn min_periods(&self) -> usize {
        self.min_periods
    }

    /// Number of values in the window (at most `window`).
    pub fn count(&self) -> usize {
        self.ring.len()
    }

    /// `count() >= min_periods()`.
    pub fn ready(&self) -> bool {
        self.ring.len() >= self.min_periods
    }

    /// Push `x`; the z-score of `x` against the window, or `None` while warming up or when the
    /// window's variance is zero.
    #[inline]
    pub fn update(&mut self, x: f64) -> Result<Option<f64>, ZScoreError> {
        if !x.is_finite() {
            return Err(ZScoreError::NonFinite { value: x });
        }
        Ok(match self.step(x) {
            Step::Undefined => None,
            Step::Fast { num, var } => Some(fast_value(num, var)),
            Step::Big { num, var } => Some(big_value(&num, &var)),
        })
    }

    /// Like [`update`](Self::update), with the exact `num` and `var` (`z = num / sqrt(var)`).
    #[inline]
    pub fn update_exact(&mut self, x: f64) -> Result<Option<Exact>, ZScoreError> {
        if !x.is_finite() {
            return Err(ZScoreError::NonFinite { value: x });
        }
        Ok(match self.step(x) {
            Step::Undefined => None,
            Step::Fast { num, var } => Some(Exact {
                value: fast_value(num, var),
                num: ExactInt::Small(num),
                var: ExactInt::Small(var),
            }),
            Step::Big { num, var } => Some(Exact {
                value: big_value(&num, &var),
                num: ExactInt::Big(num),
                var: ExactInt::Big(var),
            }),
        })
    }

    /// Push every value of `xs` in order, writing each z-score (NaN where undefined) to `out`.
    ///
    /// All of `xs` is checked first: on a non-finite value the error names its index and the
    /// state is left untouched.
    pub fn update_many(&mut self, xs: &[f64], out: &mut [f64]) -> Result<(), ZScoreError> {
        self.update_many_on(xs, out, Avx2::detect())
    }

    /// `update_many` compiled for AVX2 when given the proof, portable otherwise (the tests run
    /// both). With AVX2 the vectorised loops (the finiteness check, the scaling and checking of a
    /// block, the square roots and divisions) run on four values at a time: the same correctly
    /// rounded IEEE operations, so the same bits. No FMA: Rust never contracts `a * b + c`.
    fn update_many_on(
        &mut self,
        xs: &[f64],
        out: &mut [f64],
        avx2: Option<Avx2>,
    ) -> Result<(), ZScoreError> {
        #[cfg(target_arch = "x86_64")]
        if let Some(proof) = avx2 {
            return self.update_many_avx2(xs, out, proof);
        }
        let _ = avx2;
        self.update_many_portable(xs, out)
    }

    /// `update_many_portable` compiled with AVX2 enabled.
    #[cfg(target_arch = "x86_64")]
    #[allow(unsafe_code)]
    fn update_many_avx2(
        &mut self,
        xs: &[f64],
        out: &mut [f64],
        _: Avx2,
    ) -> Result<(), ZScoreError> {
        #[target_feature(enable = "avx2")]
        unsafe fn run(
            z: &mut RollingZScore,
            xs: &[f64],
            out: &mut [f64],
        ) -> Result<(), ZScoreError> {
            z.update_many_portable(xs, out)
        }
        // SAFETY: an `Avx2` exists only when the CPU has AVX2 (`Avx2::detect`).
        unsafe { run(self, xs, out) }
    }

    #[inline(always)]
    fn update_many_portable(&mut self, xs: &[f64], out: &mut [f64]) -> Result<(), ZScoreError> {
        if xs.len() != out.len() {
            return Err(ZScoreError::LengthMismatch {
                input: xs.len(),
                output: out.len(),
            });
        }
        if let Some(index) = first_non_finite(xs) {
            return Err(ZScoreError::NonFiniteAt {
                index,
                value: xs[index],
            });
        }
        let mut i = 0;
        while i < xs.len() {
            if self.big.is_none() && self.ring.len() == self.window {
                if self.q <= self.q_narrow_limit {
                    let j = self.run_narrow(xs, out, i);
                    if j > i {
                        i = j;
                        continue;
                    }
                }
                let j = self.run_wide(xs, out, i);
                if j > i {
                    i = j;
                    continue;
                }
            }
            out[i] = match self.step(xs[i]) {
                Step::Undefined => f64::NAN,
                Step::Fast { num, var } => fast_value(num, var),
                Step::Big { num, var } => big_value(&num, &var),
            };
            i += 1;
        }
        Ok(())
    }

    /// How many more values the block loops may push: the push that makes
    /// `pushes == rebuild_at` goes through the general path.
    fn block_budget(&self) -> usize {
        if self.rebuild_at == NEVER {
            usize::MAX
        } else {
            usize::try_from(self.rebuild_at - self.pushes - 1).unwrap_or(usize::MAX)
        }
    }

    /// `update_many`'s steady state with small sums: full window (so ready), fast mode and
    /// `Q <= 2^62 / window`, so `n·Q`, `S²`, `var` and `num` all fit `i64` and every scaled value
    /// is below `2^31`. The state is held in locals. Stops before the first value that would leave
    /// this regime (or trigger a rebuild) and returns its index.
    ///
    /// The value leaving the window as `xs[i]` enters is read from the ring buffer for the first
    /// `window` values and from `xs[i - window]` after that, so the loop neither writes the ring
    /// nor wraps its head; the ring is brought up to date once, at the end.
    ///
    /// Each block goes to the first of three kernels that takes it: [`narrow_block_fast`] (the
    /// sums provably stay narrow over the whole block), [`narrow_block`] (`Q` checked value by
    /// value, speculatively) and [`narrow_prefix`] (value by value, stopping before the first
    /// value that leaves the regime). Each leaves numerators and variances, divided by the square
    /// roots in a second, vectorisable pass: the same IEEE operations on the same exact integers
    /// as `fast_value`, so results are bit-identical to `update`.
    #[inline(always)]
    fn run_narrow(&mut self, xs: &[f64], out: &mut [f64], start: usize) -> usize {
        debug_assert!(self.big.is_none() && self.ring.len() == self.window);
        debug_assert!(self.q <= self.q_narrow_limit);
        let window = self.window;
        let head = self.head;
        let params = Narrow {
            n: window as i64,
            scale: self.scale,
            limit: self.q_narrow_limit as i64,
        };
        let end = xs.len().min(start.saturating_add(self.block_budget()));
        let mut sums = (self.s, self.q as i64);
        let mut vars = [0.0_f64; BLOCK];
        let (mut diffs, mut pairs) = ([0_i64; BLOCK], [0_i64; BLOCK]);
        let mut i = start;
        while i < end {
            let back = i - start;
            let old = if back >= window {
                &xs[i - window..]
            } else if back < window - head {
                &self.ring[head + back..]
            } else {
                &self.ring[back - (window - head)..head]
            };
            let len = old.len().min(end - i).min(BLOCK);
            let (new, old) = (&xs[i..i + len], &old[..len]);
            let (block_out, vars) = (&mut out[i..i + len], &mut vars[..len]);
            let (diffs, pairs) = (&mut diffs[..len], &mut pairs[..len]);
            if let Some(next) = narrow_block_fast(&params, sums, new, old, block_out, diffs, pairs)
            {
                sums = next;
                i += len;
                continue;
            }
            let done = match narrow_block(&params, sums, new, old, block_out, vars, diffs, pairs) {
                Some(next) => {
                    sums = next;
                    len
                }
                None => {
                    let (done, next) = narrow_prefix(&params, sums, new, old, block_out, vars);
                    sums = next;
                    done
                }
            };
            for (o, &v) in block_out[..done].iter_mut().zip(&vars[..done]) {
                let z = *o / v.sqrt();
                *o = if v == 0.0 { f64::NAN } else { z };
            }
            i += done;
            if done < len {
                break;
            }
        }
        let pushed = i - start;
        if pushed >= window {
            self.ring.copy_from_slice(&xs[i - window..i]);
            self.head = 0;
        } else {
            for &x in &xs[start..i] {
                self.ring[self.head] = x;
                self.head += 1;
                if self.head == window {
                    self.head = 0;
                }
            }
        }
        (self.s, self.q) = (sums.0, i128::from(sums.1));
        self.pushes += pushed as u64;
        i
    }

    /// Like `run_narrow` for the general fast-mode invariant (`i128` sums), one block at most so
    /// that `update_many` can return to the narrow loop when the sums shrink.
    fn run_wide(&mut self, xs: &[f64], out: &mut [f64], start: usize) -> usize {
        debug_assert!(self.big.is_none() && self.ring.len() == self.window);
        let window = self.window;
        let n = i128::from(window as i64);
        let scale = self.scale;
        let q_limit = self.q_limit;
        let end = xs
            .len()
            .min(start.saturating_add(self.block_budget().min(BLOCK)));
        let ring = &mut self.ring[..];
        let (mut s, mut q, mut head) = (self.s, self.q, self.head);
        let mut vars = [0.0_f64; BLOCK];
        let mut i = start;
        while i < end {
            let x = xs[i];
            let y = x * scale;
            if !below(y, TWO_62) {
                break;
            }
            let xi = y as i64;
            if xi as f64 != y {
                break;
            }
            let old = (ring[head] * scale) as i64;
            let (xw, ow) = (i128::from(xi), i128::from(old));
            let q_new = q - ow * ow + xw * xw;
            if q_new > q_limit {
                break;
            }
            q = q_new;
            s = s.wrapping_add(xi.wrapping_sub(old));
            ring[head] = x;
            head += 1;
            if head == window {
                head = 0;
            }
            let sw = i128::from(s);
            let var = n * q - sw * sw;
            let (num_f, var_f) = if var == 0 {
                (f64::NAN, 1.0)
            } else {
                (i128_to_f64(n * xw - sw), i128_to_f64(var))
            };
            out[i] = num_f;
            vars[i - start] = var_f;
            i += 1;
        }
        for (o, v) in out[start..i].iter_mut().zip(&vars) {
            *o /= v.sqrt();
        }
        self.s = s;
        self.q = q;
        self.head = head;
        self.pushes += (i - start) as u64;
        i
    }

    /// Forget every value (the window, scale and mode start afresh).
    pub fn reset(&mut self) {
        self.ring.clear();
        self.head = 0;
        self.k = 0;
        self.scale = 1.0;
        self.s = 0;
        self.q = 0;
        self.big = None;
        self.pushes = 0;
        self.rebuild_at = NEVER;
    }

    /// Mean of the window (within `2·2^-53` relative), `None` until `ready()` like the z-score.
    pub fn mean(&self) -> Option<f64> {
        if !self.ready() {
            return None;
        }
        let n = self.ring.len() as f64;
        let k = i64::from(self.k);
        Some(match &self.big {
            None => ldexp(self.s as f64 / n, -k),
            Some(b) => {
                let (m, shift) = top_bits(b.s.magnitude());
                let v = ldexp(m / n, shift as i64 - k);
                if b.s.is_negative() {
                    -v
                } else {
                    v
                }
            }
        })
    }

    /// Population standard deviation of the window (within `3·2^-53` relative), `None` until
    /// `ready()`.
    pub fn std(&self) -> Option<f64> {
        if !self.ready() {
            return None;
        }
        let n = self.ring.len();
        let k = i64::from(self.k);
        Some(match &self.big {
            None => {
                let s = i128::from(self.s);
                let var = n as i128 * self.q - s * s;
                ldexp(i128_to_f64(var).sqrt() / n as f64, -k)
            }
            Some(b) => {
                let var = BigInt::from(n) * &b.q - &b.s * &b.s;
                let (m, half) = top_bits_even(var.magnitude());
                ldexp(m.sqrt() / n as f64, half as i64 - k)
            }
        })
    }

    /// The hot path: fast mode, value on the current scale, invariant kept. Everything else goes
    /// to `step_slow`.
    #[inline(always)]
    fn step(&mut self, x: f64) -> Step {
        if self.big.is_none() {
            // Multiplying by 2^k is exact (no overflow below 2^62), so `y` is x·2^k exactly.
            let y = x * self.scale;
            if y.abs() < TWO_62 {
                let xi = y as i64;
                if xi as f64 == y {
                    if let Some(step) = self.step_fast(x, xi) {
                        return step;
                    }
                }
            }
        }
        self.step_slow(x)
    }

    #[inline(always)]
    fn step_fast(&mut self, x: f64, xi: i64) -> Option<Step> {
        let len = self.ring.len();
        let full = len == self.window;
        // The oldest value is on the current scale and below 2^62 there (its square is <= Q).
        let old = if full {
            (self.ring[self.head] * self.scale) as i64
        } else {
            0
        };
        let xs = i128::from(xi);
        let os = i128::from(old);
        // Q <= 2^124 and xs² < 2^124: no overflow.
        let q = self.q - os * os + xs * xs;
        if q > self.q_limit {
            return None;
        }
        self.q = q;
        // Both terms and the result are below 2^63; only an intermediate could wrap.
        self.s = self.s.wrapping_add(xi.wrapping_sub(old));
        if full {
            self.ring[self.head] = x;
            self.head += 1;
            if self.head == len {
                self.head = 0;
            }
        } else {
            self.ring.push(x);
        }
        self.pushes += 1;
        if self.pushes == self.rebuild_at {
            self.rebuild();
            return Some(self.current(x));
        }
        let n = self.ring.len();
        if n < self.min_periods {
            return Some(Step::Undefined);
        }
        let n = n as i128;
        let s = i128::from(self.s);
        let num = n * xs - s;
        let var = n * self.q - s * s;
        Some(if var == 0 {
            Step::Undefined
        } else {
            Step::Fast { num, var }
        })
    }

    #[cold]
    #[inline(never)]
    fn step_slow(&mut self, x: f64) -> Step {
        if self.big.is_some() {
            self.push_big(x);
        } else if !self.push_fast_general(x) {
            self.push_raw(x);
            self.rebuild();
        }
        if self.pushes == self.rebuild_at {
            self.rebuild();
        }
        self.current(x)
    }

    /// Fast-mode push of any value, raising the scale if needed. False (and nothing changed)
    /// when the result would not satisfy the fast invariant.
    fn push_fast_general(&mut self, x: f64) -> bool {
        let f = frac_bits(x);
        let raised = f > self.k;
        let (k, s, q) = if raised {
            let d = f - self.k;
            match (shl_i128(i128::from(self.s), d), shl_i128(self.q, 2 * d)) {
                (Some(s), Some(q)) if q <= self.q_limit => (f, s, q),
                _ => return false,
            }
        } else {
            (self.k, i128::from(self.s), self.q)
        };
        let Some(xs) = scaled_i64(x, k) else {
            return false;
        };
        let os = if self.ring.len() == self.window {
            match scaled_i64(self.ring[self.head], k) {
                Some(v) => v,
                None => return false,
            }
        } else {
            0
        };
        let (xs, os) = (i128::from(xs), i128::from(os));
        let q = q - os * os + xs * xs;
        if q > self.q_limit {
            return false;
        }
        let Ok(s) = i64::try_from(s + xs - os) else {
            return false;
        };
        self.k = k;
        self.scale = scale_for(k);
        self.s = s;
        self.q = q;
        self.push_raw(x);
        if raised {
            // The scale may come back down once every value now in the window has left it.
            self.rebuild_at = self.pushes + self.window as u64;
        }
        true
    }

    fn push_big(&mut self, x: f64) {
        let f = frac_bits(x);
        let full = self.ring.len() == self.window;
        let old = if full {
            Some(self.ring[self.head])
        } else {
            None
        };
        if let Some(b) = self.big.as_mut() {
            if f > self.k {
                let d = u64::from(f - self.k);
                b.s <<= d;
                b.q <<= 2 * d;
                self.k = f;
                self.scale = scale_for(f);
            }
            let xs = scaled_big(x, self.k);
            b.q += &xs * &xs;
            b.s += xs;
            if let Some(old) = old {
                let os = scaled_big(old, self.k);
                b.q -= &os * &os;
                b.s -= os;
            }
        }
        self.push_raw(x);
    }

    /// Append `x` to the ring buffer, evicting the oldest value when full. Sums untouched.
    fn push_raw(&mut self, x: f64) {
        if self.ring.len() == self.window {
            self.ring[self.head] = x;
            self.head += 1;
            if self.head == self.window {
                self.head = 0;
            }
        } else {
            self.ring.push(x);
        }
        self.pushes += 1;
    }

    /// Recompute the scale and the sums from the ring buffer, in fast mode when it fits.
    fn rebuild(&mut self) {
        self.rebuild_at = NEVER;
        let k = self.ring.iter().map(|&v| frac_bits(v)).max().unwrap_or(0);
        self.k = k;
        self.scale = scale_for(k);
        if let Some((s, q)) = self.fast_sums(k) {
            self.s = s;
            self.q = q;
            self.big = None;
        } else {
            let mut s = BigInt::zero();
            let mut q = BigInt::zero();
            for &v in &self.ring {
                let vs = scaled_big(v, k);
                q += &vs * &vs;
                s += vs;
            }
            self.s = 0;
            self.q = 0;
            self.big = Some(Box::new(BigSums { s, q }));
            self.rebuild_at = self.pushes + self.window as u64;
        }
    }

    fn fast_sums(&self, k: u32) -> Option<(i64, i128)> {
        let mut s: i128 = 0;
        let mut q: i128 = 0;
        for &v in &self.ring {
            let vs = i128::from(scaled_i64(v, k)?);
            // q <= q_limit <= 2^124 before adding vs² < 2^124; |s| <= window·2^62.
            q += vs * vs;
            s += vs;
            if q > self.q_limit {
                return None;
            }
        }
        Some((i64::try_from(s).ok()?, q))
    }

    /// The step for the current state, `x` being the newest value (already pushed).
    fn current(&self, x: f64) -> Step {
        let n = self.ring.len();
        if n < self.min_periods {
            return Step::Undefined;
        }
        match &self.big {
            None => {
                let xs = i128::from(
                    scaled_i64(x, self.k).expect("fast mode holds every window value below 2^62"),
                );
                let n = n as i128;
                let s = i128::from(self.s);
                let var = n * self.q - s * s;
                if var == 0 {
                    Step::Undefined
                } else {
                    Step::Fast {
                        num: n * xs - s,
                        var,
                    }
                }
            }
            Some(b) => {
                let n = BigInt::from(n);
                let var = &n * &b.q - &b.s * &b.s;
                if var.is_zero() {
                    Step::Undefined
                } else {
                    Step::Big {
                        num: n * scaled_big(x, self.k) - &b.s,
                        var,
                    }
                }
            }
        }
    }
}

#[inline(always)]
fn first_non_finite(xs: &[f64]) -> Option<usize> {
    // Chunked so the common all-finite case vectorises; the exact index is found only on failure.
    const CHUNK: usize = 256;
    for (c, chunk) in xs.chunks(CHUNK).enumerate() {
        if !chunk.iter().fold(true, |ok, v| ok & v.is_finite()) {
            let i = chunk.iter().position(|v| !v.is_finite()).unwrap_or(0);
            return Some(c * CHUNK + i);
        }
    }
    None
}

/// `x = m·2^e` with `m` odd (or `x == 0`, giving `(0, 0)`); `x` finite.
fn decompose(x: f64) -> (i64, i32) {
    let bits = x.to_bits();
    let exp_bits = ((bits >> 52) & 0x7ff) as i32;
    let frac = bits & ((1_u64 << 52) - 1);
    let (mant, exp) = if exp_bits == 0 {
        (frac, -1074)
    } else {
        (frac | (1_u64 << 52), exp_bits - 1075)
    };
    if mant == 0 {
        return (0, 0);
    }
    let tz = mant.trailing_zeros();
    let m = (mant >> tz) as i64;
    let e = exp + tz as i32;
    (if bits >> 63 == 1 { -m } else { m }, e)
}

/// Fractional bits needed to make `x` an integer (0..=1074).
fn frac_bits(x: f64) -> u32 {
    let (m, e) = decompose(x);
    if m == 0 || e >= 0 {
        0
    } else {
        e.unsigned_abs()
    }
}

/// `x·2^k` when it is an integer of magnitude below `2^62` (requires `k >= frac_bits(x)`).
fn scaled_i64(x: f64, k: u32) -> Option<i64> {
    let (m, e) = decompose(x);
    if m == 0 {
        return Some(0);
    }
    let shift = i64::from(e) + i64::from(k);
    if shift < 0 {
        return None;
    }
    let bits = 64 - i64::from(m.unsigned_abs().leading_zeros());
    if bits + shift > 62 {
        return None;
    }
    Some(m << shift)
}

/// `x·2^k` as a `BigInt` (requires `k >= frac_bits(x)`).
fn scaled_big(x: f64, k: u32) -> BigInt {
    let (m, e) = decompose(x);
    if m == 0 {
        return BigInt::zero();
    }
    let shift = i64::from(e) + i64::from(k);
    debug_assert!(shift >= 0, "scale below the value's fractional bits");
    BigInt::from(m) << shift.unsigned_abs()
}

/// `v << d` when the result fits `i128`.
fn shl_i128(v: i128, d: u32) -> Option<i128> {
    if v == 0 {
        return Some(0);
    }
    if d >= 127 {
        return None;
    }
    let r = v << d;
    (r >> d == v).then_some(r)
}

/// `2^k` as `f64`, NaN when not representable (forcing the general path).
fn scale_for(k: u32) -> f64 {
    if k <= 1023 {
        f64::from_bits(u64::from(k + 1023) << 52)
    } else {
        f64::NAN
    }
}

/// `2^e` for `-1022 <= e <= 1023`.
fn pow2(e: i64) -> f64 {
    debug_assert!((-1022..=1023).contains(&e));
    f64::from_bits(((e + 1023) as u64) << 52)
}

/// `v·2^e` without intermediate overflow.
fn ldexp(mut v: f64, mut e: i64) -> f64 {
    while e > 1000 {
        v *= pow2(1000);
        e -= 1000;
    }
    while e < -1000 {
        v *= pow2(-1000);
        e += 1000;
    }
    v * pow2(e)
}

/// `|y| < limit`, false for NaN (a NaN scale marks `k > 1023`).
#[inline(always)]
fn below(y: f64, limit: f64) -> bool {
    y.abs() < limit
}

/// Proof that the CPU has AVX2: only [`Avx2::detect`] makes one.
#[derive(Debug, Clone, Copy)]
#[cfg_attr(not(target_arch = "x86_64"), allow(dead_code))]
struct Avx2(());

impl Avx2 {
    fn detect() -> Option<Self> {
        #[cfg(target_arch = "x86_64")]
        if std::arch::is_x86_feature_detected!("avx2") {
            return Some(Self(()));
        }
        None
    }
}

/// What `run_narrow`'s block kernels need: window length, scale `2^k` and `2^62 / window`.
struct Narrow {
    n: i64,
    scale: f64,
    limit: i64,
}

/// One narrow-loop push: `y` entering and `o` leaving (both scaled, and integers below `2^31`
/// when the regime holds), with `t = y + MAGIC` and `ot = o + MAGIC`. The new `(S, Q)` and the
/// numerator and variance as floats (`var` 0 exactly when the variance is).
///
/// Exact integer steps, with one multiplication for `Q`: `y² - o² = (y - o)·(y + o)`, which
/// fits `i64` as the difference of two squares below `2^62`. The numerator is computed in
/// floats, exactly: `|n·y| <= sqrt(n)·sqrt(n·Q) <= 2^47` and `|S| <= 2^31`, so `n·y - S` and
/// its terms are integers below `2^53`, the same float as converting the integer. Wrapping
/// arithmetic: results are exact whenever the regime holds, and discarded otherwise.
#[inline(always)]
fn narrow_push(p: &Narrow, (s, q): (i64, i64), y: f64, t: f64, ot: f64) -> ((i64, i64), f64, f64) {
    let (tb, ob) = (t.to_bits() as i64, ot.to_bits() as i64);
    let d = tb.wrapping_sub(ob);
    let sum = tb.wrapping_add(ob).wrapping_sub(MAGIC_BITS.wrapping_mul(2));
    let s = s.wrapping_add(d);
    let q = q.wrapping_add(d.wrapping_mul(sum));
    let var = p.n.wrapping_mul(q).wrapping_sub(s.wrapping_mul(s));
    let num_f = p.n as f64 * y - s as f64;
    ((s, q), num_f, var as f64)
}

/// The narrow loop's usual block: like [`narrow_block`], when the block can be shown up front
/// to keep `Q <= 2^62 / n` (`Q_start + len·max(y²)` within it, `o²` only lowering `Q`). Then
/// `Q` need not be followed value by value: the variance is updated directly,
///
/// ```text
///     var' = var + d·(n·(y + o) - S - S')      d = y - o,  S' = S + d
/// ```
///
/// (one multiplication a value; wrapping arithmetic, exact since every true `var` fits), and
/// `Q = (var + S²) / n` at the end. `n·(y + o)` is exact in floats (below `2^48`, as `n·y` is
/// below `2^47`). The sums run [`GROUP`] values at a time, each group then finished into
/// z-scores by [`finish_group`]: one group's divisions (vectorised) overlap the next group's
/// sums (serial integer work), where separate passes would add their times. `None`, with
/// nothing of the state changed, when the values or the bound do not hold.
#[inline(always)]
#[allow(clippy::too_many_arguments)]
fn narrow_block_fast(
    p: &Narrow,
    (s, q): (i64, i64),
    new: &[f64],
    old: &[f64],
    out: &mut [f64],
    diffs: &mut [i64],
    scaled_pairs: &mut [i64],
) -> Option<(i64, i64)> {
    let n_f = p.n as f64;
    let mut ok = true;
    for ((((&x, &o), ny), d), np) in new
        .iter()
        .zip(old)
        .zip(out.iter_mut())
        .zip(&mut *diffs)
        .zip(&mut *scaled_pairs)
    {
        let y = x * p.scale;
        let t = y + MAGIC;
        let oy = o * p.scale;
        let ot = oy + MAGIC;
        ok &= below(y, TWO_31) & (t - MAGIC == y);
        *d = (t.to_bits() as i64).wrapping_sub(ot.to_bits() as i64);
        *np = ((n_f * (y + oy)) + MAGIC).to_bits() as i64;
        *ny = n_f * y;
    }
    // An integer below 2^31 when `ok`: the bound in i128 is exact.
    let top = i128::from((max_abs(new) * p.scale) as i64);
    if !ok || i128::from(q) + new.len() as i128 * top * top > i128::from(p.limit) {
        return None;
    }
    let mut var = p.n.wrapping_mul(q).wrapping_sub(s.wrapping_mul(s));
    let mut s = s;
    let mut push = |d: i64, np: i64| {
        let s_new = s.wrapping_add(d);
        let np = np.wrapping_sub(MAGIC_BITS);
        var = var.wrapping_add(d.wrapping_mul(np.wrapping_sub(s).wrapping_sub(s_new)));
        s = s_new;
        (s, var as f64)
    };
    let groups = out
        .chunks_exact_mut(GROUP)
        .zip(diffs.chunks_exact(GROUP))
        .zip(scaled_pairs.chunks_exact(GROUP));
    for ((out, d), np) in groups {
        let mut sums = [0_i64; GROUP];
        let mut vars = [0.0_f64; GROUP];
        for (((s, v), &d), &np) in sums.iter_mut().zip(&mut vars).zip(d).zip(np) {
            (*s, *v) = push(d, np);
        }
        finish_group(out, &sums, &vars);
    }
    let tail = new.len() - new.len() % GROUP;
    for ((o, &d), &np) in out[tail..]
        .iter_mut()
        .zip(&diffs[tail..])
        .zip(&scaled_pairs[tail..])
    {
        let (s, v) = push(d, np);
        finish_group(std::slice::from_mut(o), &[s], &[v]);
    }
    let q = (var + s * s) / p.n;
    Some((s, q))
}

/// The largest `|x|` (0 for none), four lanes at a time so that it vectorises.
#[inline(always)]
fn max_abs(xs: &[f64]) -> f64 {
    let mut lanes = [0.0_f64; 4];
    let chunks = xs.chunks_exact(4);
    let rest = chunks.remainder();
    for chunk in chunks {
        for (m, &x) in lanes.iter_mut().zip(chunk) {
            let a = x.abs();
            *m = if a > *m { a } else { *m };
        }
    }
    for (m, &x) in lanes.iter_mut().zip(rest) {
        let a = x.abs();
        *m = if a > *m { a } else { *m };
    }
    lanes
        .into_iter()
        .fold(0.0, |m, a| if a > m { a } else { m })
}

/// `out = (n·y - S) / sqrt(var)` per value, NaN where `var` is 0, from `n·y` (in `out`), `S`
/// and `var`. `S` (below `2^31`) converts exactly through `MAGIC`.
#[inline(always)]
fn finish_group(out: &mut [f64], sums: &[i64], vars: &[f64]) {
    for ((o, &s), &v) in out.iter_mut().zip(sums).zip(vars) {
        let s_f = f64::from_bits(s.wrapping_add(MAGIC_BITS) as u64) - MAGIC;
        let z = (*o - s_f) / v.sqrt();
        *o = if v == 0.0 { f64::NAN } else { z };
    }
}

/// The narrow loop over one block, speculatively: no branch per value, the regime's conditions
/// only collected. `None` when some value breaks them; the block is then redone by
/// [`narrow_prefix`], and what this wrote is overwritten or never used.
///
/// Two passes: the first, vectorisable, scales and checks the values and leaves `y - o`,
/// `y + o` (in `diffs`, `pairs`) and `n·y` (in `out`); the second runs the sums and finishes
/// the numerators (`n·y - S`) and variances. The same exact steps as [`narrow_push`].
#[inline(always)]
#[allow(clippy::too_many_arguments)]
fn narrow_block(
    p: &Narrow,
    (mut s, mut q): (i64, i64),
    new: &[f64],
    old: &[f64],
    out: &mut [f64],
    vars: &mut [f64],
    diffs: &mut [i64],
    pairs: &mut [i64],
) -> Option<(i64, i64)> {
    let n_f = p.n as f64;
    let mut ok = true;
    for ((((&x, &o), ny), d), pair) in new
        .iter()
        .zip(old)
        .zip(out.iter_mut())
        .zip(&mut *diffs)
        .zip(&mut *pairs)
    {
        let y = x * p.scale;
        let t = y + MAGIC;
        // The oldest value's square is <= Q, so it is below 2^31 on this scale too.
        let ot = o * p.scale + MAGIC;
        ok &= below(y, TWO_31) & (t - MAGIC == y);
        let (tb, ob) = (t.to_bits() as i64, ot.to_bits() as i64);
        *d = tb.wrapping_sub(ob);
        *pair = tb.wrapping_add(ob).wrapping_sub(MAGIC_BITS.wrapping_mul(2));
        *ny = n_f * y;
    }
    if !ok {
        return None;
    }
    for (((num, var_out), &d), &pair) in out.iter_mut().zip(vars).zip(&*diffs).zip(&*pairs) {
        s = s.wrapping_add(d);
        q = q.wrapping_add(d.wrapping_mul(pair));
        ok &= q <= p.limit;
        let var = p.n.wrapping_mul(q).wrapping_sub(s.wrapping_mul(s));
        *num -= s as f64;
        *var_out = var as f64;
    }
    ok.then_some((s, q))
}

/// The narrow loop over a block, value by value: stops before the first value that breaks the
/// regime. The number of values pushed and the sums after them.
#[cold]
#[inline(never)]
fn narrow_prefix(
    p: &Narrow,
    mut sums: (i64, i64),
    new: &[f64],
    old: &[f64],
    out: &mut [f64],
    vars: &mut [f64],
) -> (usize, (i64, i64)) {
    for (i, (&x, &o)) in new.iter().zip(old).enumerate() {
        let y = x * p.scale;
        let t = y + MAGIC;
        if !below(y, TWO_31) || t - MAGIC != y {
            return (i, sums);
        }
        let (next, num_f, var_f) = narrow_push(p, sums, y, t, o * p.scale + MAGIC);
        if next.1 > p.limit {
            return (i, sums);
        }
        sums = next;
        out[i] = num_f;
        vars[i] = var_f;
    }
    (new.len(), sums)
}

#[inline(always)]
fn i128_to_f64(v: i128) -> f64 {
    // One hardware conversion in the usual case; the i128 libcall only for large values (kept
    // out of line, or the compiler computes both and selects).
    match i64::try_from(v) {
        Ok(v) => v as f64,
        Err(_) => wide_to_f64(v),
    }
}

#[cold]
#[inline(never)]
fn wide_to_f64(v: i128) -> f64 {
    v as f64
}

#[inline(always)]
fn fast_value(num: i128, var: i128) -> f64 {
    i128_to_f64(num) / i128_to_f64(var).sqrt()
}

/// `m` truncated to its top 64 bits, as `(f64, shift)` with `m ≈ f64·2^shift` (`< 2^-63` relative).
fn top_bits(m: &BigUint) -> (f64, u64) {
    let shift = m.bits().saturating_sub(64);
    let top = (m >> shift).to_u64().unwrap_or(u64::MAX);
    (top as f64, shift)
}

/// Like `top_bits` with an even shift, returned halved: `m ≈ f64·4^half` (`< 2^-62` relative).
fn top_bits_even(m: &BigUint) -> (f64, u64) {
    let mut shift = m.bits().saturating_sub(64);
    shift += shift & 1;
    let top = (m >> shift).to_u64().unwrap_or(u64::MAX);
    (top as f64, shift / 2)
}

/// `num / sqrt(var)` for big operands, each scaled into `f64` range first.
fn big_value(num: &BigInt, var: &BigInt) -> f64 {
    let (a, sa) = top_bits(num.magnitude());
    let (b, sb) = top_bits_even(var.magnitude());
    let z = ldexp(a / b.sqrt(), sa as i64 - sb as i64);
    if num.is_negative() {
        -z
    } else {
        z
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// Exact `(num, var)` recomputed from scratch over `window` (values in order, newest last).
    fn exact_reference(window: &[f64]) -> (BigInt, BigInt) {
        let k = window.iter().map(|&v| frac_bits(v)).max().unwrap_or(0);
        let n = BigInt::from(window.len());
        let mut s = BigInt::zero();
        let mut q = BigInt::zero();
        for &v in window {
            let vs = scaled_big(v, k);
            q += &vs * &vs;
            s += vs;
        }
        let x = scaled_big(*window.last().expect("non-empty window"), k);
        (&n * x - &s, &n * q - &s * &s)
    }

    /// `num1/sqrt(var1) == num2/sqrt(var2)` exactly.
    fn same_z(num1: &BigInt, var1: &BigInt, num2: &BigInt, var2: &BigInt) -> bool {
        num1.signum() == num2.signum() && num1 * num1 * var2 == num2 * num2 * var1
    }

    /// Seeded splitmix64; proptest's generator is not needed for plain seeded streams.
    struct SplitMix(u64);

    impl SplitMix {
        fn next(&mut self) -> u64 {
            self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
            let mut z = self.0;
            z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
            z ^ (z >> 31)
        }
    }

    /// MES-like closes: a random walk in ticks of 0.25 around 5000, pulled back towards it.
    fn mes_prices(seed: u64, count: usize) -> Vec<f64> {
        let mut rng = SplitMix(seed);
        let mut ticks: i64 = 20_000;
        (0..count)
            .map(|_| {
                let step = (rng.next() % 9) as i64 - 4;
                let pull = (20_000 - ticks).signum() * i64::from(rng.next() % 64 == 0);
                ticks += step + pull;
                ticks as f64 * 0.25
            })
            .collect()
    }

    fn two_pass_z(window: &[f64]) -> Option<f64> {
        let n = window.len() as f64;
        let mean = window.iter().sum::<f64>() / n;
        let var = window.iter().map(|v| (v - mean) * (v - mean)).sum::<f64>() / n;
        (var > 0.0).then(|| (window[window.len() - 1] - mean) / var.sqrt())
    }

    fn check_exact_against_reference(window: usize, min_periods: usize, xs: &[f64]) {
        let mut z = RollingZScore::new(window, Some(min_periods)).unwrap();
        for (i, &x) in xs.iter().enumerate() {
            let got = z.update_exact(x).unwrap();
            let lo = (i + 1).saturating_sub(window);
            let win = &xs[lo..=i];
            let (num, var) = exact_reference(win);
            if win.len() < min_periods || var.is_zero() {
                assert!(got.is_none(), "expected undefined at {i}, got {got:?}");
                continue;
            }
            let got = got.unwrap_or_else(|| panic!("expected a value at {i}"));
            let (gn, gv) = (got.num.to_bigint(), got.var.to_bigint());
            assert!(
                same_z(&gn, &gv, &num, &var),
                "exact mismatch at {i}: {got:?} vs {num}/{var}"
            );
            let want = big_value(&num, &var);
            let tol = 1e-15 * want.abs() + f64::from_bits(1) * 8.0;
            assert!(
                (got.value - want).abs() <= tol,
                "value {} vs {want} at {i}",
                got.value
            );
        }
    }

    #[test]
    fn rejects_bad_arguments() {
        assert_eq!(
            RollingZScore::new(0, None).unwrap_err(),
            ZScoreError::InvalidWindow { window: 0 }
        );
        assert!(RollingZScore::new(MAX_WINDOW + 1, None).is_err());
        assert_eq!(
            RollingZScore::new(5, Some(6)).unwrap_err(),
            ZScoreError::InvalidMinPeriods {
                min_periods: 6,
                window: 5
            }
        );
        assert!(RollingZScore::new(5, Some(0)).is_err());
        let z = RollingZScore::new(5, None).unwrap();
        assert_eq!((z.window(), z.min_periods(), z.count()), (5, 5, 0));
    }

    #[test]
    fn warm_up_is_undefined_until_window_full() {
        let mut z = RollingZScore::new(5, None).unwrap();
        for x in [1.0, 2.0, 3.0, 4.0] {
            assert_eq!(z.update(x).unwrap(), None);
            assert!(!z.ready());
            assert_eq!(z.mean(), None);
        }
        // [1, 2, 3, 4, 5]: mean 3, std sqrt(2), z = 2/sqrt(2)
        let v = z.update(5.0).unwrap().unwrap();
        assert!((v - std::f64::consts::SQRT_2).abs() < 1e-15);
        assert!(z.ready());
        assert_eq!(z.mean(), Some(3.0));
        assert!((z.std().unwrap() - std::f64::consts::SQRT_2).abs() < 1e-15);
        // The window rolls: [2, 3, 4, 5, 6]
        let v = z.update(6.0).unwrap().unwrap();
        assert!((v - std::f64::consts::SQRT_2).abs() < 1e-15);
        assert_eq!(z.count(), 5);
        assert_eq!(z.mean(), Some(4.0));
    }

    #[test]
    fn min_periods_defines_z_early() {
        let mut z = RollingZScore::new(10, Some(3)).unwrap();
        assert_eq!(z.update(1.0).unwrap(), None);
        assert_eq!(z.update(2.0).unwrap(), None);
        // [1, 2, 3]: num = 3·3 - 6 = 3, var = 3·14 - 36 = 6
        let e = z.update_exact(3.0).unwrap().unwrap();
        assert_eq!((e.num, e.var), (ExactInt::Small(3), ExactInt::Small(6)));
        assert!((e.value - 3.0 / 6f64.sqrt()).abs() < 1e-15);
        assert_eq!(z.count(), 3);
    }

    #[test]
    fn zero_variance_is_undefined() {
        let mut z = RollingZScore::new(3, Some(1)).unwrap();
        assert_eq!(z.update(5000.25).unwrap(), None);
        assert_eq!(z.update(5000.25).unwrap(), None);
        assert_eq!(z.update(5000.25).unwrap(), None);
        assert_eq!(z.std(), Some(0.0));
        assert!(z.update(5000.5).unwrap().is_some());
    }

    #[test]
    fn non_finite_input_is_rejected_and_changes_nothing() {
        let mut z = RollingZScore::new(4, Some(2)).unwrap();
        for x in [1.0, 2.0, 4.0] {
            z.update(x).unwrap();
        }
        let before = (z.count(), z.mean(), z.std());
        for bad in [f64::NAN, f64::INFINITY, f64::NEG_INFINITY] {
            assert!(matches!(z.update(bad), Err(ZScoreError::NonFinite { .. })));
            assert!(z.update_exact(bad).is_err());
            let mut out = [0.0; 3];
            assert!(matches!(
                z.update_many(&[7.0, 8.0, bad], &mut out),
                Err(ZScoreError::NonFiniteAt { index: 2, .. })
            ));
            assert_eq!((z.count(), z.mean(), z.std()), before);
        }
        let mut fresh = RollingZScore::new(4, Some(2)).unwrap();
        for x in [1.0, 2.0, 4.0] {
            fresh.update(x).unwrap();
        }
        assert_eq!(
            z.update_exact(8.0).unwrap(),
            fresh.update_exact(8.0).unwrap()
        );
    }

    #[test]
    fn magic_bits_are_the_magic_constant() {
        assert_eq!(MAGIC.to_bits() as i64, MAGIC_BITS);
        for y in [
            0.0,
            1.0,
            -1.0,
            20_001.0,
            -(2f64.powi(31)) + 1.0,
            2f64.powi(50),
        ] {
            assert_eq!((y + MAGIC).to_bits() as i64 - MAGIC_BITS, y as i64);
        }
    }

    #[test]
    fn first_non_finite_finds_the_first_index() {
        let mut xs = vec![1.0; 1000];
        assert_eq!(first_non_finite(&xs), None);
        xs[700] = f64::INFINITY;
        xs[900] = f64::NAN;
        assert_eq!(first_non_finite(&xs), Some(700));
    }

    #[test]
    fn update_many_length_mismatch_is_an_error() {
        let mut z = RollingZScore::new(3, None).unwrap();
        let mut out = [0.0; 2];
        assert_eq!(
            z.update_many(&[1.0, 2.0, 3.0], &mut out),
            Err(ZScoreError::LengthMismatch {
                input: 3,
                output: 2
            })
        );
        assert_eq!(z.count(), 0);
    }

    #[test]
    fn reset_forgets_everything() {
        let mut z = RollingZScore::new(3, None).unwrap();
        for x in [1e300, 1e-300, 5.0, 7.0] {
            z.update(x).unwrap();
        }
        z.reset();
        assert_eq!((z.count(), z.ready(), z.mean(), z.k), (0, false, None, 0));
        assert!(z.big.is_none());
        let mut fresh = RollingZScore::new(3, None).unwrap();
        for x in [5000.25, 5001.0, 4999.5, 5000.0] {
            assert_eq!(z.update_exact(x).unwrap(), fresh.update_exact(x).unwrap());
        }
    }

    /// `update_many`'s code paths: portable, and AVX2 when this CPU has it.
    fn batch_paths() -> Vec<Option<Avx2>> {
        let mut paths = vec![None];
        paths.extend(Avx2::detect().map(Some));
        paths
    }

    #[test]
    fn update_many_matches_update() {
        let xs = mes_prices(7, 5000);
        for path in batch_paths() {
            let mut a = RollingZScore::new(20, Some(5)).unwrap();
            let mut b = a.clone();
            let mut out = vec![0.0; xs.len()];
            a.update_many_on(&xs, &mut out, path).unwrap();
            for (&x, &o) in xs.iter().zip(&out) {
                match b.update(x).unwrap() {
                    Some(v) => assert_eq!(v.to_bits(), o.to_bits()),
                    None => assert!(o.is_nan()),
                }
            }
        }
    }

    #[test]
    fn update_many_matches_update_across_regimes() {
        // Narrow i64 loop (grid prices), wide i128 loop (large or finely fractional values),
        // big mode (huge values), and back, with window turnovers in between.
        let mut xs = mes_prices(1, 300);
        xs.extend(mes_prices(2, 300).iter().map(|p| p * 1e6));
        xs.extend(mes_prices(3, 300));
        xs.extend((0..300).map(|i| 5000.0 + f64::from(i) * 1e-6));
        xs.extend(mes_prices(4, 100));
        xs.extend([1e200, -1e200, 3e-310]);
        xs.extend(mes_prices(5, 300));
        for (window, path) in [1, 2, 20, 77]
            .into_iter()
            .flat_map(|w| batch_paths().into_iter().map(move |p| (w, p)))
        {
            let mut batched = RollingZScore::new(window, None).unwrap();
            let mut single = batched.clone();
            let mut out = vec![0.0; xs.len()];
            // Uneven batches, so batch edges fall inside every regime.
            let mut start = 0;
            for len in [1, 250, 3, 700, 10_000] {
                let end = (start + len).min(xs.len());
                batched
                    .update_many_on(&xs[start..end], &mut out[start..end], path)
                    .unwrap();
                start = end;
            }
            for (i, (&x, &o)) in xs.iter().zip(&out).enumerate() {
                let v = single.update(x).unwrap().unwrap_or(f64::NAN);
                assert_eq!(v.to_bits(), o.to_bits(), "window {window}, step {i}");
            }
            assert_eq!(
                (batched.s, batched.q, batched.k),
                (single.s, single.q, single.k)
            );
            assert!(batched.big.is_none());
            check_exact_against_reference(window, window, &xs);
        }
    }

    #[test]
    fn update_many_matches_update_in_every_narrow_tier() {
        // MES prices: the bounded block. Scaled to ~1e8 (window 20): the sums stay narrow, but
        // not provably so up front, so the block follows Q value by value. Then a jump that takes
        // Q past the narrow limit within a block (value by value, then the wide loop), and back.
        let mut xs = mes_prices(8, 2000);
        xs.extend(mes_prices(9, 2000).iter().map(|p| p * 20_000.0));
        xs.extend(mes_prices(10, 50).iter().map(|p| p * 20_000.0));
        xs.extend(mes_prices(11, 50).iter().map(|p| p * 26_000.0));
        xs.extend(mes_prices(12, 2000).iter().map(|p| p * 20_000.0));
        xs.extend(mes_prices(13, 2000));
        for (window, path) in [1, 5, 20, 77]
            .into_iter()
            .flat_map(|w| batch_paths().into_iter().map(move |p| (w, p)))
        {
            let mut batched = RollingZScore::new(window, None).unwrap();
            let mut single = batched.clone();
            let mut out = vec![0.0; xs.len()];
            batched.update_many_on(&xs, &mut out, path).unwrap();
            for (i, (&x, &o)) in xs.iter().zip(&out).enumerate() {
                let v = single.update(x).unwrap().unwrap_or(f64::NAN);
                assert_eq!(v.to_bits(), o.to_bits(), "window {window}, step {i}");
            }
            let oldest_first = |z: &RollingZScore| [&z.ring[z.head..], &z.ring[..z.head]].concat();
            assert_eq!(
                (batched.s, batched.q, batched.k, oldest_first(&batched)),
                (single.s, single.q, single.k, oldest_first(&single))
            );
        }
    }

    #[test]
    fn mixed_magnitudes_enter_big_mode_and_come_back() {
        let window = 4;
        let mut z = RollingZScore::new(window, Some(2)).unwrap();
        let mut xs = mes_prices(3, 10);
        for &x in &xs {
            z.update(x).unwrap();
        }
        assert!(z.big.is_none());
        assert_eq!(z.k, 2);
        // A huge value cannot be held below 2^62: big mode.
        let mut tail = vec![1e300, 5000.25, -3.5, 1.0 / 3.0, 5000.0];
        // A subnormal needs k = 1074: big mode again, exact all along.
        tail.extend([5e-324, 4999.75, 5000.5]);
        tail.extend(mes_prices(11, 3 * window));
        for &x in &tail {
            z.update(x).unwrap();
            xs.push(x);
        }
        assert!(
            z.big.is_none(),
            "back to fast mode once the odd values left the window"
        );
        assert_eq!(z.k, 2, "scale back down to the 0.25 grid");
        check_exact_against_reference(window, 2, &xs);
    }

    #[test]
    fn big_mode_values_stay_finite_and_accurate() {
        let mut z = RollingZScore::new(3, None).unwrap();
        for x in [f64::MAX, -f64::MAX, f64::MAX] {
            z.update(x).unwrap();
        }
        // [-MAX, MAX, MAX]: deviations -4/3, 2/3, 2/3 (×MAX), std sqrt(8)/3·MAX, z = 1/sqrt(2)
        let v = z.update(f64::MAX).unwrap().unwrap();
        assert!((v - std::f64::consts::FRAC_1_SQRT_2).abs() < 1e-15, "{v}");
        // [MAX, MAX, -MAX]: z = -sqrt(2)
        let v = z.update(-f64::MAX).unwrap().unwrap();
        assert!((v + std::f64::consts::SQRT_2).abs() < 1e-15, "{v}");
        assert!(z.big.is_some());
        let m = z.mean().unwrap();
        assert!((m - f64::MAX / 3.0).abs() <= 1e-15 * f64::MAX, "{m}");
        let s = z.std().unwrap();
        assert!((s - f64::MAX / 3.0 * 8f64.sqrt()).abs() < 1e-15 * s, "{s}");

        let mut tiny = RollingZScore::new(3, None).unwrap();
        for x in [5e-324, 1e-320, 0.0] {
            tiny.update(x).unwrap();
        }
        let v = tiny.update(3e-323).unwrap().unwrap();
        check_exact_against_reference(3, 3, &[1e-320, 0.0, 3e-323]);
        assert!(v.is_finite());
    }

    #[test]
    fn scale_rises_and_falls_back_in_fast_mode() {
        let mut z = RollingZScore::new(5, Some(2)).unwrap();
        let mut xs = mes_prices(5, 6);
        xs.push(5000.125 + 1.0 / 1024.0);
        xs.extend(mes_prices(6, 5));
        for &x in &xs {
            z.update(x).unwrap();
            assert!(z.big.is_none());
        }
        assert_eq!(z.k, 2);
        check_exact_against_reference(5, 2, &xs);
    }

    #[test]
    fn mes_prices_over_ten_million_updates_match_two_pass_floats() {
        let window = 50;
        let total = 10_000_000;
        let xs = mes_prices(42, total);
        let mut z = RollingZScore::new(window, None).unwrap();
        let mut out = vec![0.0; total];
        z.update_many(&xs, &mut out).unwrap();
        let checkpoints = (window - 1..total).step_by(99_991).chain([total - 1]);
        let mut checked = 0;
        for i in checkpoints {
            let want = two_pass_z(&xs[i + 1 - window..=i]);
            match want {
                None => assert!(out[i].is_nan()),
                Some(w) => {
                    // Relative, with an absolute floor only for an exactly-zero z.
                    assert!(
                        (out[i] - w).abs() <= 1e-9 * w.abs() + 1e-12,
                        "{} vs {w}",
                        out[i]
                    );
                    checked += 1;
                }
            }
        }
        assert!(checked > 90);
        // The state at the end is exact, not just close.
        let (num, var) = exact_reference(&xs[total - window..]);
        let mut last = RollingZScore::new(window, None).unwrap();
        let mut tail = vec![0.0; window];
        last.update_many(&xs[total - window..], &mut tail).unwrap();
        assert_eq!(z.s, last.s);
        assert_eq!(z.q, last.q);
        assert!(out[total - 1].is_nan() || var > BigInt::zero());
        assert_eq!(
            tail[window - 1].to_bits(),
            out[total - 1].to_bits(),
            "drift-free: {} vs {}/{}",
            out[total - 1],
            num,
            var
        );
    }

    fn grid_price() -> impl Strategy<Value = f64> {
        (19_990_i64..20_010).prop_map(|t| t as f64 * 0.25)
    }

    fn any_finite() -> impl Strategy<Value = f64> {
        prop_oneof![
            4 => grid_price(),
            2 => -1e6_f64..1e6,
            1 => prop::num::f64::NORMAL | prop::num::f64::SUBNORMAL | prop::num::f64::ZERO,
            1 => prop::sample::select(vec![
                f64::MAX, -f64::MAX, f64::MIN_POSITIVE, 5e-324, -5e-324, 1e300, 1e-300,
                0.1, 1.0 / 3.0, 2f64.powi(61), 2f64.powi(62), -2f64.powi(63),
            ]),
        ]
    }

    proptest! {
        #[test]
        fn grid_prices_are_exact(
            window in 1_usize..30,
            mp in 1_usize..30,
            xs in prop::collection::vec(grid_price(), 1..120),
        ) {
            check_exact_against_reference(window, mp.min(window), &xs);
        }

        #[test]
        fn arbitrary_finite_values_are_exact(
            window in 1_usize..12,
            mp in 1_usize..12,
            xs in prop::collection::vec(any_finite(), 1..80),
        ) {
            check_exact_against_reference(window, mp.min(window), &xs);
        }

        #[test]
        fn update_many_equals_update_sequence(
            window in 1_usize..12,
            xs in prop::collection::vec(any_finite(), 0..60),
        ) {
            for path in batch_paths() {
                let mut a = RollingZScore::new(window, Some(1)).unwrap();
                let mut b = a.clone();
                let mut out = vec![0.0; xs.len()];
                a.update_many_on(&xs, &mut out, path).unwrap();
                for (&x, &o) in xs.iter().zip(&out) {
                    let v = b.update(x).unwrap().unwrap_or(f64::NAN);
                    prop_assert_eq!(v.to_bits(), o.to_bits());
                }
                prop_assert_eq!(a.mean().map(f64::to_bits), b.mean().map(f64::to_bits));
            }
        }
    }
}
