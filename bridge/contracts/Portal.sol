// SPDX-License-Identifier: MIT
pragma solidity ^0.8.28;

import {StateProof} from "./StateProof.sol";

/// What the Portal reads of BatchInbox.sol.
interface IBatchInbox {
    function owner() external view returns (address);
    function batchCount(uint64 chainId) external view returns (uint64);
    function lastCommitTime(uint64 chainId) external view returns (uint64);
    function output(uint64 chainId, uint64 index)
        external
        view
        returns (bytes32 root, uint64 committedAt);
}

interface IERC20Like {
    function balanceOf(address account) external view returns (uint256);
    function transfer(address to, uint256 amount) external returns (bool);
    function transferFrom(address from, address to, uint256 amount) external returns (bool);
}

/// The L1 side of every app chain's bridge (bridge/README.md has the formats):
///
///   in       depositETH / depositERC20 emit TransactionDeposited, which fully determines the
///            app chain's deposit transaction (rollup/deposits.py decodes it)
///   out      proveWithdrawal against an output root the chain's batcher committed in
///            BatchInbox, then finalizeWithdrawal once the chain's withdrawal delay has passed
///            since that commitment (rollup/withdrawals.py builds the tree)
///   escape   when a chain has committed nothing for its escape window, anyone may pay out an
///            account's ETH and bridged tokens as of the chain's last output root, proven with
///            StateProof.sol; the chain is in exit mode from then on, for good. While the hatch
///            is open the chain takes no deposits, and every deposit the exit root did not
///            execute is paid back to its L1 depositor by reclaimDeposit
///   settle   value sent between two apps over the bus moves from the source's balance to
///            the destination's, proven under the source's state
///
/// The Portal holds each chain's ETH and tokens apart (`ethBalance`, `tokenBalance`) and never
/// pays one chain's exits from another's: a payment its chain cannot cover reverts.
contract Portal {
    // ---- limits (rollup/deposits.py and rollup/withdrawals.py check the same) ----

    uint256 public constant MAX_DEPOSIT_GAS = 5_000_000;
    uint256 public constant MAX_DEPOSIT_DATA = 120_000;
    uint256 public constant MAX_WITHDRAWALS = 2 ** 32 - 1;
    uint160 public constant ALIAS_OFFSET = uint160(0x1111000000000000000000000000000000001111);

    uint8 internal constant DEFAULT_DECIMALS = 18;
    uint8 internal constant MAX_DECIMALS = 77; // 10**77 < 2**256 <= 10**78
    bytes32 internal constant DEFAULT_SYMBOL = "TOKEN";
    uint256 internal constant METADATA_GAS = 50_000; // for a token's decimals() and symbol()
    /// What a call costs beyond the gas its callee gets: a cold account (2,600), value
    /// (9,000), a new account (25,000) and slack.
    uint256 internal constant CALL_COSTS = 40_000;
    /// The app chains' system accounts, 0x...0f0000 to 0x...0f00ff (the bus escrow among
    /// them): no one may escape with their balances.
    uint160 internal constant SYSTEM_ACCOUNTS = 0x0f00;
    /// The app chains' state key of the next deposit nonce to execute (vm/bridge.py).
    bytes internal constant NEXT_DEPOSIT_KEY = hex"0d";

    // ---- state ----

    struct Chain {
        bool registered;
        uint64 withdrawalDelay; // seconds from an output's commitment until it pays
        uint64 escapeWindow; // seconds without a commitment that open the escape hatch
        uint64 depositCount; // deposits so far, which also numbers the next one
    }

    struct ProvenWithdrawal {
        bytes32 outputRoot; // 0: not proven
        uint64 batchIndex;
    }

    struct ExitMode {
        bytes32 outputRoot; // 0: the chain is live
        uint64 batchIndex;
    }

    struct OutputRootProof {
        bytes32 stateRoot;
        bytes32 withdrawalsRoot;
        bytes32 blockHash;
    }

    struct Withdrawal {
        uint64 chainId;
        uint64 nonce;
        address sender;
        address target;
        uint256 value;
        address l1Token;
        uint256 tokenAmount;
        uint64 gasLimit;
        bytes data;
    }

    struct TokenClaim {
        address l1Token;
        bytes value; // the balance as the state holds it (minimal big-endian)
        bytes32[] siblings;
    }

    /// A state key's value under a state root (vm/commitment.py's Proof), or its absence
    /// (`value` empty): the walk then ends on an empty subtree, or on another key's leaf
    /// (`otherKeyHash` not 0, with `otherValue`).
    struct KeyProof {
        bytes value;
        bytes32[] siblings;
        bytes32 otherKeyHash;
        bytes otherValue;
    }

    /// What a deposit escrowed, and from whom: its L1 caller (never aliased), which a reclaim
    /// pays back.
    struct DepositRecord {
        address sender;
        uint256 ethAmount;
        address l1Token;
        uint256 tokenAmount;
    }

    IBatchInbox public immutable inbox;
    address public immutable owner;

    mapping(uint64 chainId => Chain) public chains;
    mapping(uint64 chainId => uint256) public ethBalance;
    mapping(uint64 chainId => mapping(address l1Token => uint256)) public tokenBalance;
    mapping(bytes32 withdrawalHash => ProvenWithdrawal) public provenWithdrawals;
    mapping(bytes32 withdrawalHash => bool) public finalized;
    mapping(uint64 chainId => ExitMode) public exitMode;
    /// chain => account => asset (address(0): ETH) => paid out by the escape hatch
    mapping(uint64 chainId => mapping(address account => mapping(address asset => bool))) public
        escaped;
    /// source => destination => the source's bus counter settled so far
    mapping(uint64 src => mapping(uint64 dst => uint256)) public settled;
    /// chain => deposit nonce => keccak256(abi.encode(DepositRecord)); 0 once reclaimed
    mapping(uint64 chainId => mapping(uint64 nonce => bytes32)) public depositHash;

    bool private transient entered;

    // ---- events ----

    event ChainRegistered(uint64 indexed chainId, uint64 withdrawalDelay, uint64 escapeWindow);
    event TransactionDeposited(
        uint64 indexed chainId, uint64 indexed nonce, address indexed from, bytes opaqueData
    );
    event WithdrawalProven(
        bytes32 indexed withdrawalHash,
        uint64 indexed chainId,
        uint64 indexed batchIndex,
        bytes32 outputRoot
    );
    event WithdrawalFinalized(bytes32 indexed withdrawalHash, bool success);
    event ExitModeStarted(uint64 indexed chainId, uint64 batchIndex, bytes32 outputRoot);
    event Escaped(
        uint64 indexed chainId,
        address indexed account,
        address indexed asset,
        address payee,
        uint256 amount
    );
    event Settled(uint64 indexed src, uint64 indexed dst, uint256 counter, uint256 amount);
    event DepositReclaimed(
        uint64 indexed chainId,
        uint64 indexed nonce,
        address indexed sender,
        uint256 ethAmount,
        address l1Token,
        uint256 tokenAmount
    );

    // ---- errors ----

    error NotOwner(address sender);
    error Reentered();
    error BadChainConfig(uint64 chainId, uint64 withdrawalDelay, uint64 escapeWindow);
    error ChainAlreadyRegistered(uint64 chainId);
    error ChainNotRegistered(uint64 chainId);
    error ChainInExitMode(uint64 chainId, uint64 batchIndex);
    error ZeroRecipient();
    error DataTooLarge(uint256 size, uint256 max);
    error GasLimitOutOfRange(uint64 gasLimit, uint256 min, uint256 max);
    error NotAToken(address l1Token);
    error NothingReceived(address l1Token);
    error TokenTransferFailed(address l1Token);
    error UnknownOutput(uint64 chainId, uint64 batchIndex);
    error BadOutputRootProof(uint64 chainId, bytes32 expected, bytes32 given);
    error BadWithdrawalProof(bytes32 withdrawalHash, uint64 nonce, uint256 count);
    error UnsafeTarget(address target);
    error AlreadyProven(bytes32 withdrawalHash, uint64 batchIndex);
    error NotProven(bytes32 withdrawalHash);
    error ProofVoid(bytes32 withdrawalHash, uint64 batchIndex);
    error NotMatured(uint64 chainId, uint64 batchIndex, uint256 maturesAt);
    error AlreadyFinalized(bytes32 withdrawalHash);
    error InsufficientChainBalance(uint64 chainId, address asset, uint256 needed, uint256 held);
    error InsufficientGas(uint256 available, uint256 needed);
    error EscapeNotOpen(uint64 chainId, uint256 opensAfter);
    error NoOutput(uint64 chainId);
    error SystemAccount(address account);
    error BadStateProof(bytes key);
    error BadStateValue(bytes value);
    error AlreadyEscaped(uint64 chainId, address account, address asset);
    error NothingToClaim();
    error PaymentFailed(address payee, uint256 amount);
    error SameChain(uint64 chainId);
    error NothingToSettle(uint64 src, uint64 dst, uint256 counter, uint256 settledSoFar);
    error EscapeHatchOpen(uint64 chainId, uint256 openedAfter);
    error UnknownDeposit(uint64 chainId, uint64 nonce, uint64 depositCount);
    error DepositExecuted(uint64 chainId, uint64 nonce, uint256 nextNonce);
    error AlreadyReclaimed(uint64 chainId, uint64 nonce);
    error BadDepositRecord(uint64 chainId, uint64 nonce);

    modifier nonReentrant() {
        if (entered) revert Reentered();
        entered = true;
        _;
        entered = false;
    }

    /// The Portal is owned by the inbox's owner: one key registers chains and reverts batches.
    constructor(IBatchInbox inbox_) {
        if (inbox_.owner() != msg.sender) revert NotOwner(msg.sender);
        inbox = inbox_;
        owner = msg.sender;
    }

    // =========================================================================================
    // chains
    // =========================================================================================

    /// Open `chainId` to deposits, once. The escape window is at least the withdrawal delay,
    /// so the last output root is past its delay when the hatch opens.
    function registerChain(uint64 chainId, uint64 delay, uint64 window) external {
        if (msg.sender != owner) revert NotOwner(msg.sender);
        if (chains[chainId].registered) revert ChainAlreadyRegistered(chainId);
        if (chainId == 0 || window < delay || window == 0) {
            revert BadChainConfig(chainId, delay, window);
        }
        chains[chainId] = Chain(true, delay, window, 0);
        emit ChainRegistered(chainId, delay, window);
    }

    // =========================================================================================
    // deposits
    // =========================================================================================

    /// Mint `msg.value` to the sender on `chainId`, then call `to` with it, `data` and
    /// `gasLimit` there (a forced transaction when `data` is not empty).
    function depositETH(uint64 chainId, address to, uint64 gasLimit, bytes calldata data)
        external
        payable
    {
        _checkDeposit(chainId, to, gasLimit, data.length);
        ethBalance[chainId] += msg.value;
        bytes memory head = abi.encodePacked(to, msg.value, msg.value, gasLimit);
        _emitDeposit(chainId, head, address(0), 0, 0, bytes32(0), data);
    }

    /// Escrow `amount` of `l1Token` for `chainId` (what arrives: fee-on-transfer tokens
    /// credit less) and credit it in the chain's bridged token to `to`, then call `to`.
    function depositERC20(
        uint64 chainId,
        address l1Token,
        address to,
        uint256 amount,
        uint64 gasLimit,
        bytes calldata data
    ) external nonReentrant {
        _checkDeposit(chainId, to, gasLimit, data.length);
        uint256 received = _pullToken(l1Token, amount);
        tokenBalance[chainId][l1Token] += received;
        bytes memory head = abi.encodePacked(to, uint256(0), uint256(0), gasLimit);
        uint8 decimals = _decimalsOf(l1Token);
        _emitDeposit(chainId, head, l1Token, received, decimals, _symbolOf(l1Token), data);
    }

    function _checkDeposit(uint64 chainId, address to, uint64 gasLimit, uint256 size)
        private
        view
    {
        _requireLive(chainId);
        if (to == address(0)) revert ZeroRecipient();
        if (size > MAX_DEPOSIT_DATA) revert DataTooLarge(size, MAX_DEPOSIT_DATA);
        uint256 minGas = 21_000 + 16 * size;
        if (gasLimit < minGas || gasLimit > MAX_DEPOSIT_GAS) {
            revert GasLimitOutOfRange(gasLimit, minGas, MAX_DEPOSIT_GAS);
        }
    }

    /// opaqueData = to ++ mint ++ value ++ gasLimit ++ l1Token ++ tokenAmount ++ decimals ++
    /// symbol ++ data (`head` is the first four).
    function _emitDeposit(
        uint64 chainId,
        bytes memory head,
        address l1Token,
        uint256 tokenAmount,
        uint8 decimals,
        bytes32 symbol,
        bytes calldata data
    ) private {
        uint64 nonce = chains[chainId].depositCount++;
        // what a reclaim pays back if the chain never executes it (msg.value: 0 for tokens)
        depositHash[chainId][nonce] =
            keccak256(abi.encode(msg.sender, msg.value, l1Token, tokenAmount));
        bytes memory opaque = abi.encodePacked(head, l1Token, tokenAmount, decimals, symbol, data);
        emit TransactionDeposited(chainId, nonce, l2Sender(msg.sender), opaque);
    }

    /// The depositor as the app chain sees it: a contract's address is aliased (OP's rule),
    /// so it never acts for the app-chain account of the same address.
    function l2Sender(address sender) public view returns (address) {
        if (sender == tx.origin) return sender;
        unchecked {
            return address(uint160(sender) + ALIAS_OFFSET);
        }
    }

    // =========================================================================================
    // withdrawals
    // =========================================================================================

    /// Record that `w` is leaf `w.nonce` of the withdrawals tree under batch `batchIndex`'s
    /// output root. A withdrawal proven against a root that still stands cannot be proven
    /// again against a later batch: nobody can push its clock back. It may be moved to an
    /// earlier batch (that only brings its maturity forward), and proven anew once the
    /// inbox owner reverted the batch it was proven against.
    function proveWithdrawal(
        Withdrawal calldata w,
        uint64 batchIndex,
        OutputRootProof calldata p,
        uint256 count,
        bytes32[32] calldata siblings
    ) external {
        _requireRegistered(w.chainId);
        if (w.target == address(this)) revert UnsafeTarget(w.target);
        (bytes32 root,) = _standingOutput(w.chainId, batchIndex, p);
        bytes32 hash = withdrawalHash(w);
        if (finalized[hash]) revert AlreadyFinalized(hash);
        if (w.nonce >= count || count > MAX_WITHDRAWALS) {
            revert BadWithdrawalProof(hash, w.nonce, count);
        }
        if (withdrawalsRoot(hash, w.nonce, count, siblings) != p.withdrawalsRoot) {
            revert BadWithdrawalProof(hash, w.nonce, count);
        }
        ProvenWithdrawal storage proven = provenWithdrawals[hash];
        if (_stands(w.chainId, proven) && batchIndex >= proven.batchIndex) {
            revert AlreadyProven(hash, proven.batchIndex);
        }
        proven.outputRoot = root;
        proven.batchIndex = batchIndex;
        emit WithdrawalProven(hash, w.chainId, batchIndex, root);
    }

    /// Pay a proven withdrawal once its output is past the chain's withdrawal delay: tokens
    /// to `target`, then `target.call{value, gas: gasLimit}(data)`. A failed call is final
    /// (not replayable); its value stays in the chain's balance.
    function finalizeWithdrawal(Withdrawal calldata w) external nonReentrant {
        bytes32 hash = withdrawalHash(w);
        if (finalized[hash]) revert AlreadyFinalized(hash);
        ProvenWithdrawal memory proven = provenWithdrawals[hash];
        if (proven.outputRoot == 0) revert NotProven(hash);
        (bytes32 root, uint64 committedAt) = inbox.output(w.chainId, proven.batchIndex);
        if (root != proven.outputRoot) revert ProofVoid(hash, proven.batchIndex);
        uint256 maturesAt = uint256(committedAt) + chains[w.chainId].withdrawalDelay;
        if (block.timestamp < maturesAt) revert NotMatured(w.chainId, proven.batchIndex, maturesAt);

        finalized[hash] = true; // before any external call
        _debitEth(w.chainId, w.value);
        if (w.tokenAmount > 0) {
            _debitToken(w.chainId, w.l1Token, w.tokenAmount);
            _pushToken(w.l1Token, w.target, w.tokenAmount);
        }
        bool success = _callWithMinGas(w.target, w.gasLimit, w.value, w.data);
        if (!success) ethBalance[w.chainId] += w.value;
        emit WithdrawalFinalized(hash, success);
    }

    function withdrawalHash(Withdrawal calldata w) public pure returns (bytes32) {
        return keccak256(
            abi.encode(
                w.chainId, w.nonce, w.sender, w.target, w.value, w.l1Token, w.tokenAmount,
                w.gasLimit, w.data
            )
        );
    }

    /// keccak(root of the depth-32 tree with `hash` at leaf `index` ++ count), as
    /// rollup/withdrawals.py computes it; siblings bottom first.
    function withdrawalsRoot(
        bytes32 hash,
        uint256 index,
        uint256 count,
        bytes32[32] calldata siblings
    ) public pure returns (bytes32) {
        bytes32 node = keccak256(abi.encodePacked(hash));
        for (uint256 depth = 0; depth < 32; depth++) {
            node = (index >> depth) & 1 == 1
                ? keccak256(abi.encodePacked(siblings[depth], node))
                : keccak256(abi.encodePacked(node, siblings[depth]));
        }
        return keccak256(abi.encodePacked(node, count));
    }

    /// True if `proven` holds a root that is still the inbox's at its batch index.
    function _stands(uint64 chainId, ProvenWithdrawal storage proven) private view returns (bool) {
        if (proven.outputRoot == 0) return false;
        (bytes32 root,) = inbox.output(chainId, proven.batchIndex);
        return root == proven.outputRoot;
    }

    /// Call with at least `gasLimit` for the callee, or revert: whoever finalizes cannot make
    /// the call fail by sending too little gas (EIP-150 keeps 1/64 back; OP's SafeCall).
    function _callWithMinGas(address target, uint256 gasLimit, uint256 value, bytes memory data)
        private
        returns (bool success)
    {
        uint256 needed = (gasLimit * 64) / 63 + CALL_COSTS;
        if (gasleft() < needed) revert InsufficientGas(gasleft(), needed);
        assembly ("memory-safe") {
            success := call(gasLimit, target, value, add(data, 0x20), mload(data), 0, 0)
        }
    }

    // =========================================================================================
    // the escape hatch
    // =========================================================================================

    /// Pay `account` its ETH (if `accountValue` is given) and the bridged tokens of `tokens`
    /// as the chain's exit root has them, once per asset. The first escape of a chain, allowed
    /// when it has committed nothing for its escape window, fixes that root: its last output.
    function escape(
        uint64 chainId,
        OutputRootProof calldata p,
        address account,
        bytes calldata accountValue,
        bytes32[] calldata accountSiblings,
        TokenClaim[] calldata tokens
    ) external nonReentrant {
        bytes32 root = _enterExitMode(chainId);
        bytes32 given = outputRootOf(p);
        if (given != root) revert BadOutputRootProof(chainId, root, given);
        if (uint160(account) >> 8 == SYSTEM_ACCOUNTS) revert SystemAccount(account);
        if (accountValue.length == 0 && tokens.length == 0) revert NothingToClaim();
        address payee = payeeOf(account);
        uint256 eth = 0;
        if (accountValue.length != 0) {
            eth = _claimEth(chainId, p.stateRoot, account, accountValue, accountSiblings);
            emit Escaped(chainId, account, address(0), payee, eth);
        }
        for (uint256 i = 0; i < tokens.length; i++) {
            _claimToken(chainId, p.stateRoot, account, payee, tokens[i]);
        }
        if (eth > 0) {
            (bool ok,) = payee.call{value: eth}("");
            if (!ok) revert PaymentFailed(payee, eth);
        }
    }

    /// Where the escape hatch pays an app-chain account: an alias of an L1 contract is paid
    /// to that contract, anything else to the same address.
    function payeeOf(address account) public view returns (address) {
        address original;
        unchecked {
            original = address(uint160(account) - ALIAS_OFFSET);
        }
        return original.code.length > 0 ? original : account;
    }

    function _enterExitMode(uint64 chainId) private returns (bytes32) {
        ExitMode storage mode = exitMode[chainId];
        if (mode.outputRoot != 0) return mode.outputRoot;
        Chain storage chain = _requireRegistered(chainId);
        uint256 opensAfter = _hatchOpensAfter(chainId, chain);
        if (block.timestamp <= opensAfter) revert EscapeNotOpen(chainId, opensAfter);
        uint64 count = inbox.batchCount(chainId);
        if (count == 0) revert NoOutput(chainId);
        (bytes32 root,) = inbox.output(chainId, count - 1);
        mode.outputRoot = root;
        mode.batchIndex = count - 1;
        emit ExitModeStarted(chainId, count - 1, root);
        return root;
    }

    /// The account's balance from its state value (nonce: 8 bytes ++ balance), debited.
    function _claimEth(
        uint64 chainId,
        bytes32 stateRoot,
        address account,
        bytes calldata value,
        bytes32[] calldata siblings
    ) private returns (uint256 amount) {
        if (value.length < 8) revert BadStateValue(value);
        _proveState(stateRoot, abi.encodePacked(bytes1(0x00), account), value, siblings);
        amount = _word(value[8:]);
        _markEscaped(chainId, account, address(0));
        _debitEth(chainId, amount);
    }

    /// The account's balance in the bridged token of `claim.l1Token` (its `balanceOf` mapping
    /// at slot 0), debited and paid.
    function _claimToken(
        uint64 chainId,
        bytes32 stateRoot,
        address account,
        address payee,
        TokenClaim calldata claim
    ) private {
        bytes32 slot = keccak256(abi.encode(account, uint256(0)));
        bytes memory key = abi.encodePacked(bytes1(0x01), bridgedToken(claim.l1Token), slot);
        _proveState(stateRoot, key, claim.value, claim.siblings);
        uint256 amount = _word(claim.value);
        _markEscaped(chainId, account, claim.l1Token);
        _debitToken(chainId, claim.l1Token, amount);
        emit Escaped(chainId, account, claim.l1Token, payee, amount);
        if (amount > 0) _pushToken(claim.l1Token, payee, amount);
    }

    function _markEscaped(uint64 chainId, address account, address asset) private {
        if (escaped[chainId][account][asset]) revert AlreadyEscaped(chainId, account, asset);
        escaped[chainId][account][asset] = true;
    }

    // =========================================================================================
    // deposits the exit root did not execute
    // =========================================================================================

    /// Pay deposit `nonce` of `chainId` back to its L1 depositor, once, when the chain's exit
    /// root did not execute it: `next` proves the chain's next deposit nonce (state key 0x0d;
    /// absent: 0) under the exit root's state, and `nonce` is at or past it. Enters exit mode
    /// like `escape`. Anyone may call it; it pays `d.sender` only.
    function reclaimDeposit(
        uint64 chainId,
        uint64 nonce,
        OutputRootProof calldata p,
        KeyProof calldata next,
        DepositRecord calldata d
    ) external nonReentrant {
        bytes32 root = _enterExitMode(chainId);
        bytes32 given = outputRootOf(p);
        if (given != root) revert BadOutputRootProof(chainId, root, given);
        uint256 executed = _nextDepositNonce(p.stateRoot, next);
        if (nonce < executed) revert DepositExecuted(chainId, nonce, executed);
        _takeDepositRecord(chainId, nonce, d);
        _debitEth(chainId, d.ethAmount);
        if (d.tokenAmount > 0) _debitToken(chainId, d.l1Token, d.tokenAmount);
        emit DepositReclaimed(chainId, nonce, d.sender, d.ethAmount, d.l1Token, d.tokenAmount);
        if (d.tokenAmount > 0) _pushToken(d.l1Token, d.sender, d.tokenAmount);
        if (d.ethAmount > 0) {
            (bool ok,) = d.sender.call{value: d.ethAmount}("");
            if (!ok) revert PaymentFailed(d.sender, d.ethAmount);
        }
    }

    /// Was deposit `nonce` of `chainId` paid back by `reclaimDeposit`?
    function isReclaimed(uint64 chainId, uint64 nonce) public view returns (bool) {
        return nonce < chains[chainId].depositCount && depositHash[chainId][nonce] == 0;
    }

    /// Check `d` against what the deposit recorded, then clear the record (the mark of a
    /// reclaim, refunded as cleared storage).
    function _takeDepositRecord(uint64 chainId, uint64 nonce, DepositRecord calldata d) private {
        uint64 count = chains[chainId].depositCount;
        if (nonce >= count) revert UnknownDeposit(chainId, nonce, count);
        bytes32 recorded = depositHash[chainId][nonce];
        if (recorded == 0) revert AlreadyReclaimed(chainId, nonce);
        if (keccak256(abi.encode(d)) != recorded) revert BadDepositRecord(chainId, nonce);
        delete depositHash[chainId][nonce];
    }

    /// The chain's next deposit nonce under `stateRoot`: the proven value of key 0x0d, or 0
    /// when `next` proves the key absent (no deposit executed yet).
    function _nextDepositNonce(bytes32 stateRoot, KeyProof calldata next)
        private
        pure
        returns (uint256)
    {
        if (next.value.length != 0) {
            _proveState(stateRoot, NEXT_DEPOSIT_KEY, next.value, next.siblings);
            return _word(next.value);
        }
        if (!_provesAbsent(stateRoot, keccak256(NEXT_DEPOSIT_KEY), next)) {
            revert BadStateProof(NEXT_DEPOSIT_KEY);
        }
        return 0;
    }

    /// The walk along `keyHash` ends on an empty subtree or on another key's leaf sharing the
    /// walked prefix (vm/commitment.py's verify_proof): the trie holds no `keyHash`.
    function _provesAbsent(bytes32 stateRoot, bytes32 keyHash, KeyProof calldata next)
        private
        pure
        returns (bool)
    {
        if (next.siblings.length > 256) return false;
        bytes32 node = 0; // an empty subtree
        if (next.otherKeyHash != 0) {
            uint256 shift = 256 - next.siblings.length; // the bits below the walked prefix
            bytes32 other = next.otherKeyHash;
            if (other == keyHash || uint256(other) >> shift != uint256(keyHash) >> shift) {
                return false;
            }
            node = StateProof.leafHash(other, next.otherValue);
        }
        return StateProof.fold(keyHash, node, next.siblings) == stateRoot;
    }

    // =========================================================================================
    // settlement of bus value
    // =========================================================================================

    /// Move the growth of `src`'s bus counter for `dst` (state key 0x0c ++ u64(dst): the value
    /// of calls that succeeded on `dst`), proven under `src`'s output of batch `batchIndex`
    /// past its delay, from `src`'s ETH balance to `dst`'s.
    function settle(
        uint64 src,
        uint64 dst,
        uint64 batchIndex,
        OutputRootProof calldata p,
        bytes calldata value,
        bytes32[] calldata siblings
    ) external {
        if (src == dst) revert SameChain(src);
        Chain storage source = _requireRegistered(src);
        _requireRegistered(dst);
        (, uint64 committedAt) = _standingOutput(src, batchIndex, p);
        uint256 maturesAt = uint256(committedAt) + source.withdrawalDelay;
        if (block.timestamp < maturesAt) revert NotMatured(src, batchIndex, maturesAt);
        _proveState(p.stateRoot, abi.encodePacked(bytes1(0x0c), dst), value, siblings);
        uint256 counter = _word(value);
        uint256 before = settled[src][dst];
        if (counter <= before) revert NothingToSettle(src, dst, counter, before);
        settled[src][dst] = counter;
        _debitEth(src, counter - before);
        ethBalance[dst] += counter - before;
        emit Settled(src, dst, counter, counter - before);
    }

    // =========================================================================================
    // views and helpers
    // =========================================================================================

    /// The output root v0 (rollup/outputs.py).
    function outputRootOf(OutputRootProof calldata p) public pure returns (bytes32) {
        return keccak256(abi.encodePacked(bytes32(0), p.stateRoot, p.withdrawalsRoot, p.blockHash));
    }

    /// Where `l1Token`'s bridged token lives on every app chain (rollup/deposits.py).
    function bridgedToken(address l1Token) public pure returns (address) {
        bytes32 hash = keccak256(abi.encodePacked("app-rollup:bridged-token:", l1Token));
        return address(uint160(uint256(hash)));
    }

    function withdrawalDelay(uint64 chainId) external view returns (uint64) {
        return chains[chainId].withdrawalDelay;
    }

    function escapeWindow(uint64 chainId) external view returns (uint64) {
        return chains[chainId].escapeWindow;
    }

    function depositCount(uint64 chainId) external view returns (uint64) {
        return chains[chainId].depositCount;
    }

    /// The inbox's root of (chainId, batchIndex), which `p` must hash to; in exit mode only
    /// the exit root counts.
    function _standingOutput(uint64 chainId, uint64 batchIndex, OutputRootProof calldata p)
        private
        view
        returns (bytes32 root, uint64 committedAt)
    {
        (root, committedAt) = inbox.output(chainId, batchIndex);
        if (root == 0) revert UnknownOutput(chainId, batchIndex);
        bytes32 given = outputRootOf(p);
        if (given != root) revert BadOutputRootProof(chainId, root, given);
        ExitMode storage mode = exitMode[chainId];
        if (mode.outputRoot != 0 && mode.outputRoot != root) {
            revert ChainInExitMode(chainId, mode.batchIndex);
        }
    }

    function _requireRegistered(uint64 chainId) private view returns (Chain storage chain) {
        chain = chains[chainId];
        if (!chain.registered) revert ChainNotRegistered(chainId);
    }

    /// Registered, not in exit mode and its escape hatch closed: a deposit taken once anyone
    /// may fix the exit root would be in no exit root.
    function _requireLive(uint64 chainId) private view {
        Chain storage chain = _requireRegistered(chainId);
        ExitMode storage mode = exitMode[chainId];
        if (mode.outputRoot != 0) revert ChainInExitMode(chainId, mode.batchIndex);
        if (escapeHatchOpen(chainId)) {
            revert EscapeHatchOpen(chainId, _hatchOpensAfter(chainId, chain));
        }
    }

    /// True when anyone may start exit mode (`_enterExitMode`): the chain committed an output
    /// and nothing since for its escape window. A new commitment closes it again.
    function escapeHatchOpen(uint64 chainId) public view returns (bool) {
        Chain storage chain = chains[chainId];
        if (!chain.registered) return false;
        // the clock first: on a live chain that is the only call to the inbox
        if (block.timestamp <= _hatchOpensAfter(chainId, chain)) return false;
        return inbox.batchCount(chainId) > 0;
    }

    function _hatchOpensAfter(uint64 chainId, Chain storage chain) private view returns (uint256) {
        return uint256(inbox.lastCommitTime(chainId)) + chain.escapeWindow;
    }

    function _proveState(
        bytes32 stateRoot,
        bytes memory key,
        bytes calldata value,
        bytes32[] calldata siblings
    ) private pure {
        if (!StateProof.verifyInclusion(stateRoot, key, value, siblings)) revert BadStateProof(key);
    }

    /// A big-endian number of at most 32 bytes.
    function _word(bytes calldata raw) private pure returns (uint256 number) {
        if (raw.length > 32) revert BadStateValue(raw);
        for (uint256 i = 0; i < raw.length; i++) {
            number = (number << 8) | uint8(raw[i]);
        }
    }

    function _debitEth(uint64 chainId, uint256 amount) private {
        uint256 held = ethBalance[chainId];
        if (amount > held) revert InsufficientChainBalance(chainId, address(0), amount, held);
        ethBalance[chainId] = held - amount;
    }

    function _debitToken(uint64 chainId, address l1Token, uint256 amount) private {
        uint256 held = tokenBalance[chainId][l1Token];
        if (amount > held) revert InsufficientChainBalance(chainId, l1Token, amount, held);
        tokenBalance[chainId][l1Token] = held - amount;
    }

    // ---- tokens ----

    /// transferFrom the sender; what the Portal's balance grew by.
    function _pullToken(address l1Token, uint256 amount) private returns (uint256 received) {
        if (l1Token.code.length == 0) revert NotAToken(l1Token);
        uint256 before = IERC20Like(l1Token).balanceOf(address(this));
        address portal = address(this);
        _tokenCall(l1Token, abi.encodeCall(IERC20Like.transferFrom, (msg.sender, portal, amount)));
        received = IERC20Like(l1Token).balanceOf(address(this)) - before;
        if (received == 0) revert NothingReceived(l1Token);
    }

    function _pushToken(address l1Token, address to, uint256 amount) private {
        _tokenCall(l1Token, abi.encodeCall(IERC20Like.transfer, (to, amount)));
    }

    /// A transfer that reverts, or answers anything but nothing or `true`, failed.
    function _tokenCall(address l1Token, bytes memory call) private {
        (bool ok, bytes memory answer) = l1Token.call(call);
        if (!ok || (answer.length > 0 && (answer.length != 32 || uint256(bytes32(answer)) != 1))) {
            revert TokenTransferFailed(l1Token);
        }
    }

    /// `decimals()`, or 18 if the call fails or answers what no token would (above 77).
    function _decimalsOf(address l1Token) private view returns (uint8) {
        (bool ok, uint256 size, bytes32 word,,) = _metadata(l1Token, 0x313ce567); // decimals()
        if (!ok || size < 32 || uint256(word) > MAX_DECIMALS) return DEFAULT_DECIMALS;
        return uint8(uint256(word));
    }

    /// `symbol()` as bytes32: an ABI string truncated to 32 bytes, or a bytes32 (older tokens
    /// answer so); "TOKEN" if the call fails or answers neither.
    function _symbolOf(address l1Token) private view returns (bytes32) {
        (bool ok, uint256 size, bytes32 w0, bytes32 w1, bytes32 w2) =
            _metadata(l1Token, 0x95d89b41); // symbol()
        if (!ok) return DEFAULT_SYMBOL;
        if (size == 32) return w0;
        if (size < 64 || uint256(w0) != 32 || uint256(w1) > size - 64) return DEFAULT_SYMBOL;
        uint256 length = uint256(w1);
        if (length >= 32) return w2;
        return w2 & ~bytes32(type(uint256).max >> (8 * length)); // its first `length` bytes
    }

    /// A static call with bounded gas that copies at most three words of the answer, so a
    /// token cannot make a deposit expensive by answering megabytes.
    function _metadata(address l1Token, bytes4 selector)
        private
        view
        returns (bool ok, uint256 size, bytes32 w0, bytes32 w1, bytes32 w2)
    {
        uint256 gasCap = METADATA_GAS;
        assembly ("memory-safe") {
            let ptr := mload(0x40)
            mstore(ptr, 0)
            mstore(add(ptr, 0x20), 0)
            mstore(add(ptr, 0x40), 0)
            mstore(ptr, selector)
            ok := staticcall(gasCap, l1Token, ptr, 4, ptr, 0x60)
            size := returndatasize()
            w0 := mload(ptr)
            w1 := mload(add(ptr, 0x20))
            w2 := mload(add(ptr, 0x40))
        }
    }
}
