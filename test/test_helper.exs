# Properties (PropEr, since StreamData is out of reach) are tagged :property,
# as explorer tags its own; they run by default, `--exclude property` skips them.
ExUnit.start()
