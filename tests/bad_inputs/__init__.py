"""The bad-input corpus: declared cases (`cases.CASES`) written at test time from good base
files by small, reviewable mutations."""
