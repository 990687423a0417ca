"""Execution: the one state-transition function and the VMs behind it.

`stf.apply_transaction` runs one transaction against a journaled `State` (nonce, fees and
value are handled here, the same for every VM), hands the message to the app's VM
(`vm.native` today), and returns a receipt; `stf.apply_block` runs a whole block and checks it
against its header. The sequencer builds blocks with these functions and the verifier re-checks
them with the same ones. Nothing here does I/O; time comes in through `BlockEnv`.
"""
