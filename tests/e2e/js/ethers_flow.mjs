// An ethers v6 client against an EVM app node: what a dapp does, end to end.
// Usage: node ethers_flow.mjs HTTP_URL WS_URL PRIVATE_KEY ARTIFACT_JSON
// Prints one JSON object of what it saw; any failure exits non-zero with the error.
import { readFileSync } from "node:fs";
import { ContractFactory, JsonRpcProvider, Wallet, WebSocketProvider, Contract } from "ethers";

const [httpUrl, wsUrl, key, artifactPath] = process.argv.slice(2);
const artifact = JSON.parse(readFileSync(artifactPath, "utf8"));
const out = {};

// ethers caches identical reads for 250 ms (cacheTimeout), so a second send within 250 ms of
// the first reuses the stale "pending" nonce: on Anvil as here, where blocks take milliseconds.
const provider = new JsonRpcProvider(httpUrl, undefined, { cacheTimeout: -1 });
provider.pollingInterval = 50; // the default 4 s suits 12-second blocks
const wallet = new Wallet(key, provider);
out.chainId = (await provider.getNetwork()).chainId.toString();
const fees = await provider.getFeeData();
out.maxFeePerGas = fees.maxFeePerGas?.toString();

const factory = new ContractFactory(artifact.abi, artifact.bytecode, wallet);
const token = await factory.deploy("Ethers Token", "ETH6", 1000n);
await token.waitForDeployment();
out.address = await token.getAddress();
out.symbol = await token.symbol();

const other = Wallet.createRandom().address;
const tx = await token.transfer(other, 7n);
const receipt = await tx.wait();
out.status = receipt.status;
const parsed = receipt.logs.map((log) => token.interface.parseLog(log));
out.event = parsed[0].name;
out.eventValue = parsed[0].args.value.toString();
out.balance = (await token.balanceOf(other)).toString();
out.logsByQuery = (await token.queryFilter(token.filters.Transfer(null, other))).length;

try {
  await token.transfer.staticCall(other, 10n ** 30n);
  out.revertReason = null;
} catch (error) {
  out.revertCode = error.code;
  out.revertReason = error.reason;
}
try {
  await token.connect(Wallet.createRandom().connect(provider)).mint.staticCall(other, 1n);
  out.customError = null;
} catch (error) {
  out.customError = error.revert?.name ?? null;
}

const ws = new WebSocketProvider(wsUrl);
const watched = new Contract(out.address, artifact.abi, ws);
const seen = new Promise((resolve) => {
  watched.on("Transfer", (from, to, value) => resolve(value.toString()));
});
await new Promise((r) => setTimeout(r, 300)); // let the subscription land
await (await token.transfer(other, 11n)).wait();
let timer;
out.wsEventValue = await Promise.race([
  seen,
  new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error("no ws event in 15 s")), 15000);
  }),
]);
clearTimeout(timer); // a pending timer would keep node running
out.wsBlock = (await ws.getBlockNumber()) > 0;
await watched.removeAllListeners();
await ws.destroy();
provider.destroy();
console.log(JSON.stringify(out));
