"""Tests for ldfa_ros.frames: exact round trips, colour correctness and helpful errors."""

from __future__ import annotations

import array
from dataclasses import dataclass
from typing import Any

import cv2
import numpy as np
import pytest
from rosbags.typesys import Stores, get_typestore

from ldfa_ros.frames import DecodedFrame, FrameError, decode, encode, encoding_names

TS = get_typestore(Stores.ROS2_HUMBLE)
Image = TS.types['sensor_msgs/msg/Image']
CompressedImage = TS.types['sensor_msgs/msg/CompressedImage']
Header = TS.types['std_msgs/msg/Header']
Time = TS.types['builtin_interfaces/msg/Time']

BYTES_PER_PIXEL = {
    'rgb8': 3, 'bgr8': 3, '8UC3': 3, 'rgba8': 4, 'bgra8': 4,
    'rgb16': 6, 'bgr16': 6, 'rgba16': 8, 'bgra16': 8,
    'mono8': 1, '8UC1': 1, 'mono16': 2, '16UC1': 2,
    'uyvy': 2, 'yuv422': 2, 'yuyv': 2, 'yuv422_yuy2': 2,
    **{f'bayer_{p}8': 1 for p in ('rggb', 'bggr', 'gbrg', 'grbg')},
    **{f'bayer_{p}16': 2 for p in ('rggb', 'bggr', 'gbrg', 'grbg')},
}
W, H = 24, 16
BOX = (slice(5, 12), slice(5, 12))  # odd start: tests Bayer site parity and YUV pair widening
COLOUR = np.array([200, 60, 30], np.uint8)


@dataclass
class RclpyImage:
    """Stand-in for an rclpy Image: same fields, data is array.array('B')."""

    header: Any
    height: int
    width: int
    encoding: str
    is_bigendian: int
    step: int
    data: array.array


@dataclass
class RclpyCompressedImage:
    header: Any
    format: str
    data: array.array


def header() -> Any:
    return Header(stamp=Time(sec=1700000000, nanosec=123456789), frame_id='cam_front')


def raw_image(encoding: str, data: bytes, *, width: int = W, height: int = H, step: int | None = None,
              big: bool = False, rclpy: bool = False) -> Any:
    step = width * BYTES_PER_PIXEL.get(encoding, 3) if step is None else step
    if rclpy:
        return RclpyImage(header(), height, width, encoding, int(big), step, array.array('B', data))
    return Image(header=header(), height=height, width=width, encoding=encoding, is_bigendian=int(big),
                 step=step, data=np.frombuffer(data, np.uint8).copy())


def compressed(fmt: str, data: bytes, *, rclpy: bool = False) -> Any:
    if rclpy:
        return RclpyCompressedImage(header(), fmt, array.array('B', data))
    return CompressedImage(header=header(), format=fmt, data=np.frombuffer(data, np.uint8).copy())


def raw_bytes(msg: Any) -> bytes:
    return bytes(memoryview(msg.data).cast('B'))


def random_raw(encoding: str, pad: int, big: bool, rclpy: bool, seed: int = 0) -> Any:
    step = W * BYTES_PER_PIXEL[encoding] + pad
    data = np.random.default_rng(seed).integers(0, 256, step * H, np.uint8).tobytes()
    return raw_image(encoding, data, step=step, big=big, rclpy=rclpy)


def painted(frame: DecodedFrame) -> tuple[np.ndarray, np.ndarray]:
    rgb = frame.rgb.copy()
    rgb[BOX] = COLOUR
    changed = np.zeros(rgb.shape[:2], bool)
    changed[BOX] = True
    return rgb, changed


def grey_of(colour: np.ndarray) -> np.ndarray:
    return cv2.cvtColor(colour.reshape(1, 1, 3), cv2.COLOR_RGB2GRAY).repeat(3)


def variants() -> list[tuple[str, int, bool, bool]]:
    out = []
    for enc in encoding_names():
        for pad in (0, 7):
            for rclpy in (False, True):
                out.append((enc, pad, False, rclpy))
            if BYTES_PER_PIXEL[enc] % 2 == 0 and enc not in ('uyvy', 'yuv422', 'yuyv', 'yuv422_yuy2'):
                out.append((enc, pad, True, False))
    return out


def test_encoding_names_cover_the_brief():
    assert set(BYTES_PER_PIXEL) == set(encoding_names())


@pytest.mark.parametrize(('enc', 'pad', 'big', 'rclpy'), variants())
def test_raw_round_trip_unchanged_is_bit_identical(enc, pad, big, rclpy):
    msg = random_raw(enc, pad, big, rclpy)
    frame = decode(msg)
    assert frame.rgb.shape == (H, W, 3) and frame.rgb.dtype == np.uint8
    assert frame.rgb.flags.c_contiguous
    out = encode(frame, frame.rgb, np.zeros((H, W), bool))
    assert type(out) is type(msg)
    assert type(out.data) is type(msg.data)
    assert raw_bytes(out) == raw_bytes(msg)
    assert (out.encoding, out.step, out.width, out.height, out.is_bigendian) == (
        msg.encoding, msg.step, msg.width, msg.height, msg.is_bigendian)
    assert out.header is msg.header


@pytest.mark.parametrize(('enc', 'pad', 'big', 'rclpy'), variants())
def test_raw_box_changes_only_inside(enc, pad, big, rclpy):
    msg = random_raw(enc, pad, big, rclpy)
    frame = decode(msg)
    out = encode(frame, *painted(frame))
    before = np.frombuffer(raw_bytes(msg), np.uint8)
    after = np.frombuffer(raw_bytes(out), np.uint8)
    diff = np.flatnonzero(before != after)
    assert diff.size, 'the box should change some bytes'
    bpp = BYTES_PER_PIXEL[enc]
    rows, cols = diff // msg.step, (diff % msg.step) // bpp
    assert np.all((diff % msg.step) < W * bpp), 'row padding must be kept'
    x0, x1 = BOX[1].start, BOX[1].stop
    if enc in ('uyvy', 'yuv422', 'yuyv', 'yuv422_yuy2'):
        x0, x1 = x0 // 2 * 2, (x1 + 1) // 2 * 2  # chroma pairs are rewritten whole
    assert np.all((rows >= BOX[0].start) & (rows < BOX[0].stop) & (cols >= x0) & (cols < x1))
    expected = COLOUR
    if 'mono' in enc or 'UC1' in enc:
        expected = grey_of(COLOUR)
    # Bayer demosaicing blends across the box border, so judge its interior.
    inner = (slice(BOX[0].start + 2, BOX[0].stop - 2), slice(BOX[1].start + 2, BOX[1].stop - 2))
    got = decode(out).rgb[inner].reshape(-1, 3).astype(int)
    assert np.abs(got - expected).max() <= 3


@pytest.mark.parametrize('enc', encoding_names())
def test_changed_none_rewrites_the_whole_frame(enc):
    msg = random_raw(enc, 0, False, False)
    frame = decode(msg)
    grey = np.full((H, W, 3), 128, np.uint8)
    got = decode(encode(frame, grey, None)).rgb.astype(int)
    if '16' in enc:  # a uniform 16-bit frame is its own reference, so it re-decodes as uniform white
        assert got.min() == got.max() == 255
    else:
        assert np.abs(got - 128).max() <= 3


def test_rgb8_decode_does_not_alias_message_data():
    msg = random_raw('rgb8', 0, False, False)
    before = raw_bytes(msg)
    frame = decode(msg)
    frame.rgb[:] = 0
    assert raw_bytes(msg) == before
    assert raw_bytes(encode(frame, frame.rgb, np.zeros((H, W), bool))) == before


def test_colour_encodings_decode_to_rgb_and_keep_alpha():
    rgb = np.random.default_rng(1).integers(0, 256, (H, W, 3), np.uint8)
    alpha = np.random.default_rng(2).integers(0, 256, (H, W, 1), np.uint8)
    for enc, native in {'rgb8': rgb, 'bgr8': rgb[..., ::-1], '8UC3': rgb[..., ::-1],
                        'rgba8': np.concatenate([rgb, alpha], 2),
                        'bgra8': np.concatenate([rgb[..., ::-1], alpha], 2)}.items():
        frame = decode(raw_image(enc, np.ascontiguousarray(native).tobytes()))
        np.testing.assert_array_equal(frame.rgb, rgb)
        out = encode(frame, np.zeros_like(rgb), None)
        got = np.frombuffer(raw_bytes(out), np.uint8).reshape(H, W, -1)
        assert not got[..., :3].any()
        if got.shape[2] == 4:
            np.testing.assert_array_equal(got[..., 3:], alpha)


def test_16bit_big_endian_and_dim_12bit_scaling():
    values = np.random.default_rng(3).integers(0, 4096, (H, W), np.uint16)  # a dim 12-bit camera
    little = decode(raw_image('mono16', values.astype('<u2').tobytes()))
    big = decode(raw_image('mono16', values.astype('>u2').tobytes(), big=True))
    np.testing.assert_array_equal(little.rgb, big.rgb)
    assert little.rgb.max() == 255, 'a 12-bit range must fill the 8-bit range, not look black'
    assert np.corrcoef(little.rgb[..., 0].ravel(), values.ravel())[0, 1] > 0.999
    out = encode(big, np.full((H, W, 3), 255, np.uint8), None)
    back = np.frombuffer(raw_bytes(out), '>u2')
    assert abs(int(back.max()) - int(np.percentile(values[::3, ::3], 99.9))) <= 1
    assert np.ptp(back) == 0


def mosaic(pattern: str, rgb: np.ndarray) -> np.ndarray:
    """Hand-made Bayer mosaic: pattern gives the colours of the top-left 2 x 2 sites."""
    raw = np.empty(rgb.shape[:2], rgb.dtype)
    sites = {(0, 0): pattern[0], (0, 1): pattern[1], (1, 0): pattern[2], (1, 1): pattern[3]}
    for y in range(rgb.shape[0]):
        for x in range(rgb.shape[1]):
            raw[y, x] = rgb[y, x, 'rgb'.index(sites[y % 2, x % 2])]
    return raw


@pytest.mark.parametrize('pattern', ['rggb', 'bggr', 'gbrg', 'grbg'])
@pytest.mark.parametrize('bits', [8, 16])
@pytest.mark.parametrize('colour', [(255, 0, 0), (0, 255, 0), (0, 0, 255), (255, 128, 0)])
def test_bayer_decodes_known_colours(pattern, bits, colour):
    dtype = np.uint8 if bits == 8 else np.uint16
    scale = 1 if bits == 8 else 257
    rgb = np.empty((8, 10, 3), dtype)
    rgb[:] = np.array(colour) * scale
    raw = mosaic(pattern, rgb)
    frame = decode(raw_image(f'bayer_{pattern}{bits}', raw.tobytes(), width=10, height=8))
    got = frame.rgb[2:-2, 2:-2].reshape(-1, 3).astype(int)
    assert np.abs(got - colour).max() <= 1, f'{pattern}: got {got[0]}, expected {colour}'
    out = encode(frame, np.broadcast_to(np.array(colour, np.uint8), (8, 10, 3)).copy(), None)
    expected = mosaic(pattern, np.broadcast_to(np.array(colour, np.uint8), (8, 10, 3)))
    got_raw = np.frombuffer(raw_bytes(out), dtype).reshape(8, 10)
    np.testing.assert_allclose(got_raw, expected.astype(float) * scale, atol=scale)


@pytest.mark.parametrize('enc', ['uyvy', 'yuyv'])
def test_yuv_colours_round_trip(enc):
    rgb = np.zeros((4, 8, 3), np.uint8)
    rgb[:, 0:2], rgb[:, 2:4], rgb[:, 4:6], rgb[:, 6:8] = (255, 0, 0), (0, 255, 0), (0, 0, 255), (90, 160, 210)
    blank = decode(raw_image(enc, bytes(4 * 8 * 2), width=8, height=4))
    got = decode(encode(blank, rgb, None)).rgb.astype(int)
    assert np.abs(got - rgb).max() <= 3


def astronaut(size: tuple[int, int] = (64, 48)) -> np.ndarray:
    from skimage.data import astronaut as load

    return cv2.resize(load(), size, interpolation=cv2.INTER_AREA)


def png(img: np.ndarray) -> bytes:
    return cv2.imencode('.png', img)[1].tobytes()


@pytest.mark.parametrize('rclpy', [False, True])
def test_jpeg_round_trip(rclpy):
    rgb = astronaut((256, 192))  # big enough that 8 x 8 JPEG blocks fit inside the box
    fmt = 'rgb8; jpeg compressed bgr8'
    jpeg = cv2.imencode('.jpg', rgb[..., ::-1], [cv2.IMWRITE_JPEG_QUALITY, 95])[1]
    msg = compressed(fmt, jpeg.tobytes(), rclpy=rclpy)
    frame = decode(msg)
    np.testing.assert_array_equal(frame.rgb, cv2.imdecode(jpeg, cv2.IMREAD_COLOR)[..., ::-1])
    box = (slice(40, 100), slice(50, 120))
    painted_rgb, changed = frame.rgb.copy(), np.zeros((192, 256), bool)
    painted_rgb[box], changed[box] = COLOUR, True
    out = encode(frame, painted_rgb, changed)
    assert out.format == fmt and out.header is msg.header and type(out.data) is type(msg.data)
    again = decode(out).rgb.astype(int)
    assert np.abs(again[42:98, 52:118] - COLOUR).max() <= 12
    assert np.abs(again[~changed] - frame.rgb[~changed]).mean() < 2
    small = encode(frame, frame.rgb, None, jpeg_quality=20)
    assert len(small.data) < len(out.data)


@pytest.mark.parametrize(('fmt', 'img'), [
    ('bgr8; png compressed bgr8', astronaut()[..., ::-1]),
    ('png', np.dstack([astronaut()[..., ::-1], np.arange(64 * 48, dtype=np.uint8).reshape(48, 64)])),
    ('mono8; png compressed mono8', cv2.cvtColor(astronaut(), cv2.COLOR_RGB2GRAY)),
    ('mono16; png compressed mono16', np.random.default_rng(4).integers(0, 4096, (48, 64), np.uint16)),
    ('bgr16; png compressed bgr16', np.random.default_rng(5).integers(0, 65536, (48, 64, 3), np.uint16)),
])
@pytest.mark.parametrize('rclpy', [False, True])
def test_png_is_lossless_outside_changed_and_keeps_depth(fmt, img, rclpy):
    msg = compressed(fmt, png(img), rclpy=rclpy)
    frame = decode(msg)
    assert frame.rgb.shape == (48, 64, 3)
    out = encode(frame, *painted(frame))
    assert out.format == fmt and out.header is msg.header and type(out.data) is type(msg.data)
    back = cv2.imdecode(np.frombuffer(raw_bytes(out), np.uint8), cv2.IMREAD_UNCHANGED)
    assert back.shape == img.shape and back.dtype == img.dtype
    outside = np.ones(img.shape[:2], bool)
    outside[BOX] = False
    np.testing.assert_array_equal(back[outside], img[outside])
    if img.ndim == 3 and img.shape[2] == 4:
        np.testing.assert_array_equal(back[..., 3], img[..., 3])
    expected = COLOUR if img.ndim == 3 else grey_of(COLOUR)
    assert np.abs(decode(out).rgb[BOX].reshape(-1, 3).astype(int) - expected).max() <= 2


def test_header_is_preserved():
    msg = random_raw('bgr8', 0, False, False)
    out = encode(decode(msg), decode(msg).rgb, None)
    assert out.header is msg.header
    assert (out.header.stamp.sec, out.header.stamp.nanosec, out.header.frame_id) == (
        1700000000, 123456789, 'cam_front')


@pytest.mark.parametrize(('msg', 'needle'), [
    (raw_image('rgb9', bytes(100)), "'rgb9': unsupported encoding"),
    (raw_image('rgb8', b'', width=0, height=4, step=0), 'Image 0x4'),
    (raw_image('mono8', bytes(16), width=4, height=0), 'width and height must be positive'),
    (raw_image('rgb8', bytes(1000), width=10, height=10, step=20),
     'step 20 is smaller than width 10 x 3 bytes per pixel = 30'),
    (raw_image('rgb8', bytes(1000), width=640, height=480),
     "Image 640x480 'rgb8': data has 1000 bytes, expected at least 921600 (step 1920 x height 480)"),
    (raw_image('mono16', bytes(30), width=4, height=4, rclpy=True),
     'data has 30 bytes, expected at least 32'),
    (raw_image('yuyv', bytes(60), width=5, height=6), 'width must be even'),
    (compressed('jpeg', b'not a jpeg at all'), "CompressedImage 'jpeg': cannot decode 17 bytes"),
    (compressed('png', b''), 'cannot decode 0 bytes'),
    (compressed('rgb8; tiff compressed rgb8', png(astronaut())), 'unsupported format'),
    (compressed('16UC1; compressedDepth png', png(astronaut())), 'unsupported format'),
    (object(), 'neither an Image'),
])
def test_bad_input_raises_frame_error(msg, needle):
    with pytest.raises(FrameError) as err:
        decode(msg)
    assert needle in str(err.value)


def test_encode_rejects_wrong_shapes():
    frame = decode(random_raw('rgb8', 0, False, False))
    with pytest.raises(FrameError, match=r"'rgb8': rgb has shape \(16, 24\).*expected \(16, 24, 3\)"):
        encode(frame, frame.rgb[..., 0], None)
    with pytest.raises(FrameError, match='dtype float32'):
        encode(frame, frame.rgb.astype(np.float32), None)
    with pytest.raises(FrameError, match=r'changed has shape \(16, 23\), expected \(16, 24\)'):
        encode(frame, frame.rgb, np.zeros((16, 23), bool))
