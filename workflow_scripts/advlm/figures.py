"""What every report figure shares: text at reading size and the resolution it is saved at.

A figure saved at ``DPI`` is shown by the HTML report and a Markdown viewer at about its saved size, so ``FONT_PT``
is the size a reader sees (8 pt is the smallest that reads comfortably; tests/test_figures.py checks every text).
"""

FONT_PT = 9
DPI = 100
