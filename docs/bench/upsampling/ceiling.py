"""Resampling ceilings and the dense-bone error of the native-512 head table (README.md here).

python3 docs/bench/upsampling/ceiling.py REF.dcm [DDS.dcm TV.dcm]
REF: the native slice; the ceiling is REF area-averaged to the 0.957 mm prior grid and brought
back by repeating pixels (the old path) or by Keys cubic interpolation (the new one). With DDS
and TV outputs (DICOM), the squared error per HU band. PSNR: data range of REF inside the body
(values above -1200 HU), so it differs by a constant from medsgm's summary figures.
"""
import sys
import numpy as np
import pydicom


def load(path):
    d = pydicom.dcmread(path)
    hu = d.pixel_array.astype(np.float64) * float(getattr(d, "RescaleSlope", 1)) + float(
        getattr(d, "RescaleIntercept", 0))
    return hu, float(d.PixelSpacing[0])


def area(n_in, n_out):
    s, w = n_in / n_out, np.zeros((n_out, n_in))
    for o in range(n_out):
        lo, hi = o * s, (o + 1) * s
        for i in range(int(lo), min(n_in, int(np.ceil(hi)) + 1)):
            w[o, i] = max(0.0, min(hi, i + 1) - max(lo, i)) / s
    return w


def keys(n_in, n_out, a=-0.5):
    w = np.zeros((n_out, n_in))
    for o in range(n_out):
        x = (o + 0.5) * n_in / n_out - 0.5
        for i in range(int(np.floor(x)) - 1, int(np.floor(x)) + 3):
            t = abs(x - i)
            k = (a + 2) * t**3 - (a + 3) * t**2 + 1 if t <= 1 else (
                a * t**3 - 5 * a * t**2 + 8 * a * t - 4 * a if t < 2 else 0.0)
            w[o, min(max(i, 0), n_in - 1)] += k
    return w


def psnr(x, ref, mask):
    r = ref[mask]
    return 10 * np.log10((r.max() - r.min()) ** 2 / np.mean((x[mask] - r) ** 2))


ref, mm = load(sys.argv[1])
mask = ref > -1200
n = ref.shape[0]
m = int(round(n * mm / 0.957))
body = np.where(mask, ref, -1000.0)
down = area(n, m) @ body @ area(n, m).T
print(f"{sys.argv[1]}: {n}² at {mm:.3f} mm, prior grid {m}²")
print(f"  ceiling, pixels repeated: {psnr(area(m, n) @ down @ area(m, n).T, ref, mask):.2f} dB")
print(f"  ceiling, cubic:           {psnr(keys(m, n) @ down @ keys(m, n).T, ref, mask):.2f} dB")
if len(sys.argv) > 3:
    dds, tv = load(sys.argv[2])[0], load(sys.argv[3])[0]
    for label, band in [("< 1000 HU", mask & (ref < 1000)), ("1000-1500 HU", (ref >= 1000) & (ref < 1500)),
                        (">= 1500 HU", ref >= 1500)]:
        if band.any():
            print(f"  {label}: {band.sum()} px, SSE DDS {((dds - ref)[band] ** 2).sum():.3g} "
                  f"TV {((tv - ref)[band] ** 2).sum():.3g}; mean HU ref {ref[band].mean():.0f} "
                  f"DDS {dds[band].mean():.0f} TV {tv[band].mean():.0f}")
