"""Codec between ROS ``sensor_msgs/Image`` / ``CompressedImage`` messages and numpy RGB.

ROS-free on purpose: it works on any object with the message fields (rosbags dataclasses
with numpy ``data``, rclpy messages with ``array.array('B')`` data), so the same code
serves bag processing and live nodes.  Encoding writes new pixels only where a mask says
so and copies the original native bytes elsewhere, so anonymisation never degrades the
parts of a frame it did not touch.

16-bit data is shown to detection scaled by a robust per-frame reference: the 99.9th
percentile of every third row and column (odd stride, so all Bayer sites are sampled),
mapped to 255.  Plain ``>> 8`` would make a dim 12-bit camera look black.  Encoding maps
new pixels back with the same factor.
"""

from __future__ import annotations

import array
from dataclasses import dataclass, field
from typing import Any, NamedTuple

import cv2
import numpy as np


class FrameError(ValueError):
    """A message that cannot be turned into pixels or back; the text names what was wrong."""


class _Layout(NamedTuple):
    """How native pixels are stored: kind, samples per pixel, bytes per sample, order."""

    kind: str  # 'color', 'mono', 'bayer' or 'yuv'
    channels: int
    depth: int
    order: str = ''  # 'rgb'/'bgr' for color, site pattern for bayer, byte order for yuv


_ENCODINGS: dict[str, _Layout] = {
    'rgb8': _Layout('color', 3, 1, 'rgb'), 'bgr8': _Layout('color', 3, 1, 'bgr'),
    '8UC3': _Layout('color', 3, 1, 'bgr'),
    'rgba8': _Layout('color', 4, 1, 'rgb'), 'bgra8': _Layout('color', 4, 1, 'bgr'),
    'rgb16': _Layout('color', 3, 2, 'rgb'), 'bgr16': _Layout('color', 3, 2, 'bgr'),
    'rgba16': _Layout('color', 4, 2, 'rgb'), 'bgra16': _Layout('color', 4, 2, 'bgr'),
    'mono8': _Layout('mono', 1, 1), '8UC1': _Layout('mono', 1, 1),
    'mono16': _Layout('mono', 1, 2), '16UC1': _Layout('mono', 1, 2),
    'uyvy': _Layout('yuv', 2, 1, 'uyvy'), 'yuv422': _Layout('yuv', 2, 1, 'uyvy'),
    'yuyv': _Layout('yuv', 2, 1, 'yuyv'), 'yuv422_yuy2': _Layout('yuv', 2, 1, 'yuyv'),
    **{f'bayer_{p}{bits}': _Layout('bayer', 1, bits // 8, p)
       for p in ('rggb', 'bggr', 'gbrg', 'grbg') for bits in (8, 16)},
}

# OpenCV names a Bayer pattern after the second row, so ROS 'rggb' is OpenCV 'BG'.
_DEMOSAIC = {'rggb': cv2.COLOR_BayerBG2RGB, 'bggr': cv2.COLOR_BayerRG2RGB,
             'gbrg': cv2.COLOR_BayerGR2RGB, 'grbg': cv2.COLOR_BayerGB2RGB}
_COLOR2RGB = {('rgb', 3): None, ('rgb', 4): cv2.COLOR_RGBA2RGB,
              ('bgr', 3): cv2.COLOR_BGR2RGB, ('bgr', 4): cv2.COLOR_BGRA2RGB}
_YUV2RGB = {'uyvy': cv2.COLOR_YUV2RGB_UYVY, 'yuyv': cv2.COLOR_YUV2RGB_YUY2}
# Byte positions of (Y0, U, Y1, V) within each 4-byte pixel pair.
_YUV_BYTES = {'uyvy': (1, 0, 3, 2), 'yuyv': (0, 1, 2, 3)}
# BT.601 limited range (what OpenCV's YUV422 decoding assumes): rows map (R, G, B, 1) to Y / U, V.
_RGB2Y = np.array([[65.481, 128.553, 24.966, 16 * 255]]) / 255
_RGB2UV = np.array([[-37.797, -74.203, 112.0, 128 * 255],
                    [112.0, -93.786, -18.214, 128 * 255]]) / 255
_PERCENTILE = 99.9


@dataclass
class DecodedFrame:
    """Pixels for detection and rendering, plus what is needed to re-encode exactly."""

    rgb: np.ndarray  # H x W x 3 uint8 C-contiguous RGB: what detection and rendering work on
    source: Any  # the input message, kept to re-encode with its header/encoding/format
    _native: np.ndarray = field(repr=False)  # source pixels as stored (raw: a view of msg.data)
    _layout: _Layout = field(repr=False)
    _scale: float = field(default=1.0, repr=False)  # native units per rgb unit (16-bit only)


def encoding_names() -> tuple[str, ...]:
    """Supported raw encodings, for help texts and tests."""
    return tuple(_ENCODINGS)


def decode(msg: Any) -> DecodedFrame:
    """Turn an Image or CompressedImage message into RGB; raise FrameError if impossible."""
    what = _describe(msg)
    try:
        if hasattr(msg, 'format'):
            native, layout = _decode_compressed(msg, what)
        else:
            buf = _bytes(msg.data, what)
            layout = _raw_layout(msg, buf.size, what)
            native = _raw_view(buf, msg, layout)
        rgb, scale = _to_rgb(native, layout)
    except cv2.error as exc:
        raise FrameError(f'{what}: OpenCV could not convert it: {exc}') from exc
    return DecodedFrame(rgb, msg, native, layout, scale)


def encode(frame: DecodedFrame, rgb: np.ndarray, changed: np.ndarray | None, *,
           jpeg_quality: int = 95) -> Any:
    """New message of the same type as frame.source: same header object (stamp, frame_id),
    same encoding/format, height/width/is_bigendian; pixels where `changed` (H x W bool) is
    False are taken from the ORIGINAL native data bit-for-bit (for raw encodings and PNG);
    where True, from `rgb` converted back to the native encoding.  changed=None means the
    whole frame changed.  JPEG is re-compressed at `jpeg_quality`, so it is never bit-exact."""
    msg = frame.source
    what = _describe(msg)
    h, w = frame.rgb.shape[:2]
    rgb = np.asarray(rgb)
    if rgb.shape != (h, w, 3) or rgb.dtype != np.uint8:
        raise FrameError(f'{what}: rgb has shape {rgb.shape} and dtype {rgb.dtype}, '
                         f'expected ({h}, {w}, 3) uint8')
    mask = None if changed is None else np.asarray(changed, bool)
    if mask is not None and mask.shape != (h, w):
        raise FrameError(f'{what}: changed has shape {mask.shape}, expected ({h}, {w})')
    try:
        if hasattr(msg, 'format'):
            out = frame._native.copy()
            _write(out, rgb, mask, frame._layout, frame._scale)
            ext, params = (('.png', []) if 'png' in msg.format.lower()
                           else ('.jpg', [cv2.IMWRITE_JPEG_QUALITY, int(jpeg_quality)]))
            ok, encoded = cv2.imencode(ext, out, params)
            if not ok:
                raise FrameError(f'{what}: OpenCV could not encode {ext}')
            return type(msg)(header=msg.header, format=msg.format,
                             data=_container(msg.data, encoded.reshape(-1)))
        data = _bytes(msg.data, what).copy()  # keeps row padding and any trailing bytes
        _write(_raw_view(data, msg, frame._layout), rgb, mask, frame._layout, frame._scale)
    except cv2.error as exc:
        raise FrameError(f'{what}: OpenCV could not convert it: {exc}') from exc
    return type(msg)(header=msg.header, height=msg.height, width=msg.width,
                     encoding=msg.encoding, is_bigendian=msg.is_bigendian, step=msg.step,
                     data=_container(msg.data, data))


def _describe(msg: Any) -> str:
    if hasattr(msg, 'format'):
        return f'CompressedImage {msg.format!r}'
    if hasattr(msg, 'encoding') and hasattr(msg, 'step'):
        return f'Image {msg.width}x{msg.height} {msg.encoding!r}'
    raise FrameError(f'{type(msg).__name__} is neither an Image (encoding, step) '
                     'nor a CompressedImage (format)')


def _bytes(data: Any, what: str) -> np.ndarray:
    """The message data as a flat uint8 array without copying (numpy, array.array, bytes)."""
    try:
        return np.frombuffer(memoryview(data).cast('B'), np.uint8)
    except (TypeError, ValueError) as exc:
        raise FrameError(f'{what}: data of type {type(data).__name__} is not a byte buffer') from exc


def _container(like: Any, data: np.ndarray) -> Any:
    """`data` in the input's container kind, because rclpy and rosbags expect their own."""
    if isinstance(like, np.ndarray):
        return data
    out = array.array('B')
    out.frombytes(data)
    return out


def _raw_layout(msg: Any, size: int, what: str) -> _Layout:
    """The layout of a raw Image after checking its geometry against its data size."""
    layout = _ENCODINGS.get(msg.encoding)
    if layout is None:
        raise FrameError(f'{what}: unsupported encoding; supported: {", ".join(_ENCODINGS)}')
    w, h, step = msg.width, msg.height, msg.step
    if w <= 0 or h <= 0:
        raise FrameError(f'{what}: width and height must be positive')
    if layout.kind == 'yuv' and w % 2:
        raise FrameError(f'{what}: width must be even for YUV 4:2:2 (pixels come in pairs)')
    row = w * layout.channels * layout.depth
    if step < row:
        raise FrameError(f'{what}: step {step} is smaller than width {w} x '
                         f'{layout.channels * layout.depth} bytes per pixel = {row}')
    if size < step * h:
        raise FrameError(f'{what}: data has {size} bytes, expected at least {step * h} '
                         f'(step {step} x height {h})')
    return layout


def _raw_view(buf: np.ndarray, msg: Any, layout: _Layout) -> np.ndarray:
    """View (no copy) of the pixels in `buf`, skipping row padding: H x W [x C] or H x W/2 x 4 (yuv)."""
    h, w = msg.height, msg.width
    rows = buf[:msg.step * h].reshape(h, msg.step)[:, :w * layout.channels * layout.depth]
    if layout.depth == 2:
        rows = rows.view('>u2' if msg.is_bigendian else '<u2')
    if layout.kind == 'yuv':
        return rows.reshape(h, w // 2, 4)
    return rows.reshape(h, w, layout.channels) if layout.channels > 1 else rows


def _decode_compressed(msg: Any, what: str) -> tuple[np.ndarray, _Layout]:
    fmt = msg.format.lower()
    if 'compresseddepth' in fmt or not any(c in fmt for c in ('jpeg', 'jpg', 'png')):
        raise FrameError(f'{what}: unsupported format; expected jpeg or png '
                         '(image_transport "<encoding>; <codec> compressed <encoding>")')
    buf = _bytes(msg.data, what)
    img = cv2.imdecode(buf, cv2.IMREAD_UNCHANGED) if buf.size else None
    bad_channels = img is not None and img.ndim == 3 and img.shape[2] not in (3, 4)
    if img is None or img.dtype not in (np.uint8, np.uint16) or bad_channels:
        raise FrameError(f'{what}: cannot decode {buf.size} bytes of data as an 8/16-bit image')
    depth = img.dtype.itemsize
    if img.ndim == 2:
        return img, _Layout('mono', 1, depth)
    return img, _Layout('color', img.shape[2], depth, 'bgr')


def _to8(a: np.ndarray) -> tuple[np.ndarray, float]:
    """Scale 16-bit samples to uint8 by the robust reference (see module docstring)."""
    if a.dtype == np.uint8:
        return a, 1.0
    ref = max(float(np.percentile(a[::3, ::3], _PERCENTILE)), 1.0)
    return cv2.convertScaleAbs(a, alpha=255.0 / ref), ref / 255.0


def _native_samples(a: np.ndarray, layout: _Layout, scale: float) -> np.ndarray:
    """uint8 samples back to the native sample width (inverse of _to8)."""
    if layout.depth == 1:
        return a
    return (a.astype(np.float32) * np.float32(scale) + 0.5).astype(np.uint16)


def _to_rgb(native: np.ndarray, layout: _Layout) -> tuple[np.ndarray, float]:
    """Convert native pixels to a fresh C-contiguous RGB uint8 array and the 16-bit scale."""
    if layout.depth == 2:  # OpenCV needs native byte order and rows a whole number of samples apart
        native = np.ascontiguousarray(native, np.uint16)
    if layout.kind == 'yuv':
        h, half = native.shape[:2]
        return cv2.cvtColor(native.reshape(h, half * 2, 2), _YUV2RGB[layout.order]), 1.0
    if layout.kind == 'color':
        code = _COLOR2RGB[layout.order, layout.channels]  # always a copy: never alias msg.data
        rgb = native.copy() if code is None else cv2.cvtColor(native, code)
        return _to8(rgb)
    gray, scale = _to8(native)
    if layout.kind == 'bayer':
        return cv2.cvtColor(gray, _DEMOSAIC[layout.order]), scale
    return cv2.cvtColor(gray, cv2.COLOR_GRAY2RGB), scale


def _write(out: np.ndarray, rgb: np.ndarray, mask: np.ndarray | None, layout: _Layout,
           scale: float) -> None:
    """Write `rgb`, converted to the native layout of `out`, into `out` where `mask` is True.

    Only the bounding box of `mask` is converted: faces are small and frames are large."""
    if mask is not None:
        rows = np.flatnonzero(mask.any(axis=1))
        if not rows.size:
            return
        cols = np.flatnonzero(mask[rows[0]:rows[-1] + 1].any(axis=0))
        y0, y1, x0, x1 = rows[0], rows[-1] + 1, cols[0], cols[-1] + 1
        if layout.kind in ('bayer', 'yuv'):  # keep Bayer site parity and whole YUV pairs
            y0, x0, x1 = y0 - y0 % 2, x0 - x0 % 2, min(x1 + x1 % 2, mask.shape[1])
        ys, xs = slice(y0, y1), slice(x0, x1)
        out = out[ys, x0 // 2:x1 // 2] if layout.kind == 'yuv' else out[ys, xs]
        rgb, mask = rgb[ys, xs], mask[ys, xs]
    if layout.kind == 'color':
        out, new = out[..., :3], rgb if layout.order == 'rgb' else rgb[..., ::-1]  # alpha is kept
    elif layout.kind == 'mono':
        new = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)
    elif layout.kind == 'bayer':  # re-mosaic: each site keeps only its own colour
        new = np.empty(rgb.shape[:2], np.uint8)
        for i, colour in enumerate(layout.order):
            dy, dx = divmod(i, 2)
            new[dy::2, dx::2] = rgb[dy::2, dx::2, 'rgb'.index(colour)]
    else:  # yuv: chroma is shared by a pixel pair, so a touched pair is rewritten whole
        h, half = out.shape[:2]
        pair = ((rgb[:, 0::2].astype(np.uint16) + rgb[:, 1::2] + 1) >> 1).astype(np.uint8)
        y, uv = cv2.transform(rgb, _RGB2Y), cv2.transform(pair, _RGB2UV)
        new = np.empty((h, half, 4), np.uint8)
        at_y0, at_u, at_y1, at_v = _YUV_BYTES[layout.order]
        new[..., at_y0], new[..., at_y1] = y[:, 0::2], y[:, 1::2]
        new[..., at_u], new[..., at_v] = uv[..., 0], uv[..., 1]
        mask = None if mask is None else mask.reshape(h, half, 2).any(axis=2)
    new = _native_samples(new, layout, scale)
    if mask is None:
        out[...] = new
    else:
        np.copyto(out, new, where=mask if out.ndim == 2 else mask[..., None])
