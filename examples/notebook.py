# %% [markdown]
# # A gradsweep study from a notebook
#
# Run a study first (the demo's, 31 small trials):
#   gradsweep launch configs/toy-demo.yaml --db sqlite:///demo.db
# then read it here with the names the command line uses (docs/python.md).

# %%
import sys

import gradsweep

url = sys.argv[1] if len(sys.argv) > 1 else "sqlite:///demo.db"
results = gradsweep.open(url)
results.studies()[["name", "status", "completed", "static_optimum"]]

# %% [markdown]
# The verdicts, as `gradsweep compare` opens with them.

# %%
study = results.study(results.studies()["name"].iloc[0])
verdicts = study.verdicts()
for line in verdicts.lines():
    print(line)

# %% [markdown]
# Each adaptive configuration's time-averaged weights against the static optimum.

# %%
comparison = study.comparison()
rows = [
    {"config": a.config, "weights": a.weights_mean, "objective": a.objective}
    for a in comparison.adaptive
]
print("static optimum", comparison.static_best.weights, comparison.static_best.objective)
print(rows)
