"""`make bench` entry point. The benchmarks themselves arrive with the Benchmarks issue."""

import sys


def main() -> int:
    print("No benchmarks are defined yet (see the Benchmarks issue); nothing measured.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
