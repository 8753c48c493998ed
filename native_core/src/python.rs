//! The `native_core._native` module: a thin `#[pyclass]` over [`crate::zscore::RollingZScore`].

use numpy::{PyArray1, PyArrayMethods, PyUntypedArray, PyUntypedArrayMethods};
use pyo3::exceptions::{PyOverflowError, PyValueError};
use pyo3::prelude::*;

use crate::zscore::{ExactInt, RollingZScore as Core, ZScoreError, MAX_WINDOW};

/// Batches at least this long run with the GIL released.
const DETACH_MIN_LEN: usize = 4096;

fn value_error(e: ZScoreError) -> PyErr {
    PyValueError::new_err(e.to_string())
}

/// An integer argument in `1..=MAX_WINDOW`; out-of-range (or too big for i64) is a ValueError.
fn count_arg(obj: &Bound<'_, PyAny>, name: &str) -> PyResult<usize> {
    let v: i64 = match obj.extract() {
        Ok(v) => v,
        Err(e) if e.is_instance_of::<PyOverflowError>(obj.py()) => {
            return Err(PyValueError::new_err(format!(
                "{name} must be between 1 and {MAX_WINDOW}, got {obj}"
            )))
        }
        Err(e) => return Err(e),
    };
    match usize::try_from(v) {
        Ok(v) if v >= 1 => Ok(v),
        _ => Err(PyValueError::new_err(format!(
            "{name} must be between 1 and {MAX_WINDOW}, got {v}"
        ))),
    }
}

fn exact_int<'py>(py: Python<'py>, v: ExactInt) -> PyResult<Bound<'py, PyAny>> {
    if let Some(small) = v.as_i64() {
        return Ok(small.into_pyobject(py)?.into_any());
    }
    Ok(match v {
        ExactInt::Small(v) => v.into_pyobject(py)?.into_any(),
        ExactInt::Big(v) => v.into_pyobject(py)?.into_any(),
    })
}

/// Exact rolling z-score over the last ``window`` values (population std, newest included).
#[pyclass(name = "RollingZScore", module = "native_core._native")]
struct RollingZScore {
    core: Core,
}

impl RollingZScore {
    fn run<'py>(&mut self, py: Python<'py>, xs: &[f64]) -> PyResult<Bound<'py, PyArray1<f64>>> {
        if xs.len() < DETACH_MIN_LEN {
            let mut out = vec![0.0; xs.len()];
            self.core.update_many(xs, &mut out).map_err(value_error)?;
            return Ok(PyArray1::from_vec(py, out));
        }
        // numpy's own allocator (huge pages for large arrays) and no zero-filling: noticeably
        // cheaper than a fresh Vec for a million values, whose page faults cost ~1 ns per value.
        let out = py
            .import("numpy")?
            .getattr("empty")?
            .call1((xs.len(),))?
            .cast_into::<PyArray1<f64>>()?;
        {
            let mut rw = out
                .try_readwrite()
                .map_err(|e| PyValueError::new_err(e.to_string()))?;
            let slice = rw
                .as_slice_mut()
                .map_err(|e| PyValueError::new_err(e.to_string()))?;
            let core = &mut self.core;
            py.detach(|| core.update_many(xs, slice))
                .map_err(value_error)?;
        }
        Ok(out)
    }
}

#[pymethods]
impl RollingZScore {
    #[new]
    #[pyo3(signature = (window, min_periods = None))]
    fn new(window: &Bound<'_, PyAny>, min_periods: Option<&Bound<'_, PyAny>>) -> PyResult<Self> {
        let window = count_arg(window, "window")?;
        let min_periods = min_periods
            .map(|m| count_arg(m, "min_periods"))
            .transpose()?;
        Ok(Self {
            core: Core::new(window, min_periods).map_err(value_error)?,
        })
    }

    /// Push ``x``; its z-score, or None while warming up or when the variance is zero.
    fn update(&mut self, x: f64) -> PyResult<Option<f64>> {
        self.core.update(x).map_err(value_error)
    }

    /// Like ``update``, as ``(value, num, var)`` with ``z = num / sqrt(var)`` exactly.
    #[allow(clippy::type_complexity)]
    fn update_exact<'py>(
        &mut self,
        py: Python<'py>,
        x: f64,
    ) -> PyResult<Option<(f64, Bound<'py, PyAny>, Bound<'py, PyAny>)>> {
        match self.core.update_exact(x).map_err(value_error)? {
            None => Ok(None),
            Some(e) => Ok(Some((
                e.value,
                exact_int(py, e.num)?,
                exact_int(py, e.var)?,
            ))),
        }
    }

    /// Push every value in order; the z-scores as a float64 array (NaN where undefined).
    fn update_many<'py>(
        &mut self,
        py: Python<'py>,
        xs: &Bound<'py, PyAny>,
    ) -> PyResult<Bound<'py, PyArray1<f64>>> {
        if let Ok(arr) = xs.cast::<PyArray1<f64>>() {
            let ro = arr
                .try_readonly()
                .map_err(|e| PyValueError::new_err(e.to_string()))?;
            return match ro.as_slice() {
                Ok(slice) => self.run(py, slice),
                Err(_) => {
                    let owned = ro.as_array().to_vec();
                    self.run(py, &owned)
                }
            };
        }
        if let Ok(arr) = xs.cast::<PyUntypedArray>() {
            if arr.ndim() != 1 {
                return Err(PyValueError::new_err(format!(
                    "xs must be one-dimensional, got shape {:?}",
                    arr.shape()
                )));
            }
            let converted = arr.call_method1("astype", ("float64",))?;
            let converted = converted.cast::<PyArray1<f64>>()?;
            let owned = converted
                .try_readonly()
                .map_err(|e| PyValueError::new_err(e.to_string()))?
                .as_array()
                .to_vec();
            return self.run(py, &owned);
        }
        let owned: Vec<f64> = xs.extract()?;
        self.run(py, &owned)
    }

    /// Forget every value.
    fn reset(&mut self) {
        self.core.reset();
    }

    #[getter]
    fn window(&self) -> usize {
        self.core.window()
    }

    #[getter]
    fn min_periods(&self) -> usize {
        self.core.min_periods()
    }

    /// Values in the window.
    #[getter]
    fn count(&self) -> usize {
        self.core.count()
    }

    /// ``count >= min_periods``.
    #[getter]
    fn ready(&self) -> bool {
        self.core.ready()
    }

    /// Mean of the window, None until ready.
    #[getter]
    fn mean(&self) -> Option<f64> {
        self.core.mean()
    }

    /// Population standard deviation of the window, None until ready.
    #[getter]
    fn std(&self) -> Option<f64> {
        self.core.std()
    }

    fn __repr__(&self) -> String {
        format!(
            "RollingZScore(window={}, min_periods={}, count={})",
            self.core.window(),
            self.core.min_periods(),
            self.core.count()
        )
    }
}

#[pymodule]
fn _native(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    m.add_class::<RollingZScore>()?;
    Ok(())
}
