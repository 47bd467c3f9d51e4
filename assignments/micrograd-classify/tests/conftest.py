# Lets plain `pytest` in the assignment folder import your files: `from engine import Value`, `from losses import ...`.
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
