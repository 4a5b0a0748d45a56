"""`python -m localdev` (what `make run` runs): see localdev/devrun.py."""

from localdev.devrun import main

if __name__ == "__main__":
    main()
