"""Study search: simplex points, the trial plan and its run on Ray Tune."""
