"""A script that fails the way user scripts do: an exception after some output."""

print("about to divide", flush=True)
print(1 / 0)
