"""A camera for tests and measurements: a real ROS 2 process publishing a real face photo.

    python test/ros_camera.py TOPIC:KIND:QOS [...] [--rate HZ] [--size WxH] [--seconds S]

KIND is `raw` (sensor_msgs/Image, rgb8) or `jpeg` (sensor_msgs/CompressedImage); QOS is `reliable` or
`best_effort` (depth 1). The picture is skimage's astronaut, resized to --size. Each message's frame_id
is its topic's second-to-last name and its stamp the publish time. Prints `ready` once the publishers
exist and, at the end, `sent TOPIC N` per topic.
"""
from __future__ import annotations

import argparse
import sys
import time

import cv2
import numpy as np
import rclpy
from rclpy.executors import ExternalShutdownException
from rclpy.qos import HistoryPolicy, QoSProfile, ReliabilityPolicy
from sensor_msgs.msg import CompressedImage, Image
from skimage import data
from std_msgs.msg import Header


def picture(size: tuple[int, int]) -> np.ndarray:
    """The astronaut photo (one real face) at `size` (width, height)."""
    rgb = data.astronaut()
    return rgb if rgb.shape[1::-1] == size else cv2.resize(rgb, size, interpolation=cv2.INTER_AREA)


def message(kind: str, rgb: np.ndarray, frame_id: str) -> Image | CompressedImage:
    header = Header(frame_id=frame_id)
    if kind == "jpeg":
        ok, jpeg = cv2.imencode(".jpg", cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, 95])
        return CompressedImage(header=header, format="jpeg", data=jpeg.tobytes())
    h, w = rgb.shape[:2]
    return Image(header=header, height=h, width=w, encoding="rgb8", is_bigendian=0, step=w * 3, data=rgb.tobytes())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("cameras", nargs="+", help="TOPIC:KIND:QOS")
    parser.add_argument("--rate", type=float, default=5.0)
    parser.add_argument("--size", default="512x512")
    parser.add_argument("--seconds", type=float, default=0.0, help="0: until SIGINT/SIGTERM")
    args = parser.parse_args()
    size = tuple(int(v) for v in args.size.split("x"))
    rgb = picture((size[0], size[1]))
    rclpy.init()
    node = rclpy.create_node("test_camera")
    cameras = []
    for spec in args.cameras:
        topic, kind, qos = spec.split(":")
        reliability = ReliabilityPolicy.RELIABLE if qos == "reliable" else ReliabilityPolicy.BEST_EFFORT
        msg = message(kind, rgb, topic.strip("/").split("/")[-2 if kind == "raw" else -3])
        pub = node.create_publisher(type(msg), topic, QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=1,
                                                                 reliability=reliability))
        cameras.append((topic, pub, msg))
    sent = dict.fromkeys([topic for topic, _, _ in cameras], 0)
    print("ready", flush=True)
    end = time.monotonic() + args.seconds if args.seconds else float("inf")
    try:
        while rclpy.ok() and time.monotonic() < end:
            tick = time.monotonic()
            for topic, pub, msg in cameras:
                msg.header.stamp = node.get_clock().now().to_msg()
                pub.publish(msg)
                sent[topic] += 1
            time.sleep(max(0.0, 1 / args.rate - (time.monotonic() - tick)))
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    finally:
        for topic, count in sent.items():
            print(f"sent {topic} {count}", flush=True)
        node.destroy_node()
        rclpy.try_shutdown()


if __name__ == "__main__":
    sys.exit(main())
