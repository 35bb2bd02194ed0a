"""Built-in sample data with real faces, so the demo, benchmarks and node warm-up need no data set."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import cv2
import numpy as np

DATA = Path(__file__).resolve().parent / "data"  # public-domain photos, see data/README.md


def photo(name: str) -> np.ndarray:
    """An RGB photo shipped in `ldfa_ros/data` ('astronaut.png', 'rocket.jpg')."""
    bgr = cv2.imread(str(DATA / name), cv2.IMREAD_COLOR)
    if bgr is None:
        raise FileNotFoundError(f"sample photo missing from the installed package: {DATA / name}")
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)


def sample_frames() -> dict[str, np.ndarray]:
    """Built-in sample data with a real face: the astronaut photo, and a 1920x1080 camera-like frame
    with that face at several sizes, as pedestrians appear at several distances."""
    astronaut = photo("astronaut.png")
    face = astronaut[30:230, 140:310]
    frame = cv2.resize(photo("rocket.jpg"), (1920, 1080), interpolation=cv2.INTER_LINEAR)
    for x, height in ((150, 400), (800, 200), (1300, 100), (1600, 60)):
        width = int(face.shape[1] * height / face.shape[0])
        frame[500: 500 + height, x: x + width] = cv2.resize(face, (width, height), interpolation=cv2.INTER_AREA)
    return {"astronaut.png": astronaut, "street_1080p.png": frame}


def street_frame(height: int = 1080, width: int = 1920) -> np.ndarray:
    """The camera-like sample frame (`sample_frames`' 'street_1080p.png') at another size, e.g. a
    camera's for warming up the models that run on its frames."""
    frame = sample_frames()["street_1080p.png"]
    if frame.shape[:2] == (height, width):
        return frame
    return cv2.resize(frame, (width, height), interpolation=cv2.INTER_AREA)


def write_sample_bag(path: Path, count: int = 10, *, encoding: str = "rgb8", storage: str = "sqlite3") -> Path:
    """A ROS 2 bag to try `ldfa bag` on without data (demo, benchmark): `count` 1920x1080 frames at 10 Hz
    of `sample_frames()` (real faces at four sizes) panning 8 px a frame, raw `encoding` or
    'jpeg' (CompressedImage), with Imu at 100 Hz, TF at 50 Hz and a String at 1 Hz beside it."""
    from rosbags.rosbag2 import StoragePlugin, Writer
    from rosbags.typesys import Stores, get_typestore

    store = get_typestore(Stores.ROS2_HUMBLE)
    t = store.types
    base = sample_frames()["street_1080p.png"]
    compressed = encoding == "jpeg"
    camera = "/camera/front/image_raw" + ("/compressed" if compressed else "")
    topics = {camera: "sensor_msgs/msg/" + ("CompressedImage" if compressed else "Image"),
              "/imu": "sensor_msgs/msg/Imu", "/tf": "tf2_msgs/msg/TFMessage", "/status": "std_msgs/msg/String"}
    start = 1_700_000_000 * 10**9
    with Writer(path, version=8, storage_plugin=StoragePlugin[storage.upper()]) as writer:
        conns = {name: writer.add_connection(name, msgtype, typestore=store) for name, msgtype in topics.items()}
        for tick in range(count * 10):  # 100 Hz
            ns = start + tick * 10**7
            stamp = t["builtin_interfaces/msg/Time"](sec=ns // 10**9, nanosec=ns % 10**9)
            header = t["std_msgs/msg/Header"](stamp=stamp, frame_id="base_link")
            vec, quat = t["geometry_msgs/msg/Vector3"](x=0.0, y=0.0, z=9.81), t["geometry_msgs/msg/Quaternion"](
                x=0.0, y=0.0, z=0.0, w=1.0)
            messages = {"/imu": t["sensor_msgs/msg/Imu"](header, quat, np.zeros(9), vec, np.zeros(9), vec, np.zeros(9))}
            if tick % 2 == 0:
                stamped = t["geometry_msgs/msg/TransformStamped"](
                    header, "camera_front", t["geometry_msgs/msg/Transform"](vec, quat))
                messages["/tf"] = t["tf2_msgs/msg/TFMessage"]([stamped])
            if tick % 100 == 0:
                messages["/status"] = t["std_msgs/msg/String"](f"recording, tick {tick}")
            if tick % 10 == 0:
                rgb = np.roll(base, 8 * (tick // 10), axis=1)
                header = t["std_msgs/msg/Header"](stamp=stamp, frame_id="camera_front")
                messages[camera] = _image(t, header, rgb, encoding)
            for name, msg in messages.items():
                writer.write(conns[name], ns, store.serialize_cdr(msg, topics[name]))
    return path


def _image(types: Any, header: Any, rgb: np.ndarray, encoding: str) -> Any:
    if encoding == "jpeg":
        ok, data = cv2.imencode(".jpg", cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, 90])
        return types["sensor_msgs/msg/CompressedImage"](header, "rgb8; jpeg compressed bgr8", data.reshape(-1))
    native = rgb if encoding == "rgb8" else cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR)
    h, w = native.shape[:2]
    return types["sensor_msgs/msg/Image"](header, h, w, encoding, 0, w * 3, np.ascontiguousarray(native).reshape(-1))
