"""`python -m service`: run the checkout service with settings from the environment."""

from service.app import main

if __name__ == "__main__":
    main()
