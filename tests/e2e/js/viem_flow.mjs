// viem (npm, pinned) against a native token app: public and wallet clients over HTTP, a
// WebSocket client for watchBlocks/watchContractEvent, and the node's unlocked dev account.
// Prints one JSON line of what it saw. Usage: node viem_flow.mjs HTTP_URL WS_URL KEY ABI_JSON TOKEN
import { readFileSync } from "node:fs";
import {
  createPublicClient, createWalletClient, defineChain, http, webSocket, parseAbiItem,
  BaseError, ContractFunctionRevertedError,
} from "viem";
import { privateKeyToAccount } from "viem/accounts";

const [url, wsUrl, key, abiPath, token] = process.argv.slice(2);
const abi = JSON.parse(readFileSync(abiPath, "utf8"));
const probe = createPublicClient({ transport: http(url) });
const id = await probe.getChainId();
const chain = defineChain({
  id, name: "app", nativeCurrency: { name: "Ether", symbol: "ETH", decimals: 18 },
  rpcUrls: { default: { http: [url], webSocket: [wsUrl] } },
});
const client = createPublicClient({ chain, transport: http(url) });
const ws = createPublicClient({ chain, transport: webSocket(wsUrl) });
const account = privateKeyToAccount(key);
const wallet = createWalletClient({ account, chain, transport: http(url) });
const other = "0x00000000000000000000000000000000000000c0";
const seen = { chainId: id };

// Watchers first, so they see what follows.
const blocks = [];
const stopBlocks = ws.watchBlocks({ onBlock: (b) => blocks.push(b.number) });
const events = [];
const stopEvents = ws.watchContractEvent({
  address: token, abi, eventName: "Transfer", onLogs: (logs) => events.push(...logs),
});
await new Promise((r) => setTimeout(r, 300));

seen.balance = (await client.getBalance({ address: account.address })) > 0n;
const gas = await client.estimateGas({ account, to: other, value: 1n });
seen.gas = Number(gas);
const hash = await wallet.sendTransaction({ to: other, value: 3n });
const receipt = await client.waitForTransactionReceipt({ hash });
seen.status = receipt.status;
seen.otherBalance = (await client.getBalance({ address: other })).toString();

seen.symbol = await client.readContract({ address: token, abi, functionName: "symbol" });
const write = await wallet.writeContract({
  address: token, abi, functionName: "transfer", args: [other, 5n],
});
await client.waitForTransactionReceipt({ hash: write });
seen.tokenBalance = (await client.readContract({
  address: token, abi, functionName: "balanceOf", args: [other],
})).toString();
const logs = await client.getLogs({
  address: token,
  event: parseAbiItem("event Transfer(address indexed from, address indexed to, uint256 value)"),
  args: { to: other }, fromBlock: 0n,
});
seen.logs = logs.length;

try {
  await client.simulateContract({
    account: privateKeyToAccount("0x" + "77".repeat(32)), address: token, abi,
    functionName: "transfer", args: [other, 10n ** 30n],
  });
  seen.customError = null;
} catch (err) {
  const revert = err instanceof BaseError && err.walk((e) => e instanceof ContractFunctionRevertedError);
  seen.customError = revert?.data?.errorName ?? String(err);
}

// The node's unlocked dev account: a wallet client with an address only (eth_sendTransaction).
const [dev] = await client.request({ method: "eth_accounts" });
const unlocked = createWalletClient({ account: dev, chain, transport: http(url) });
const nodeSigned = await unlocked.sendTransaction({ to: other, value: 2n });
seen.nodeSignedStatus = (await client.waitForTransactionReceipt({ hash: nodeSigned })).status;

const deadline = Date.now() + 10000;
while ((blocks.length === 0 || events.length === 0) && Date.now() < deadline) {
  await new Promise((r) => setTimeout(r, 100));
}
seen.wsBlocks = blocks.length > 0;
seen.wsEvents = events.length;
stopBlocks();
stopEvents();
console.log(JSON.stringify(seen));
process.exit(0);
