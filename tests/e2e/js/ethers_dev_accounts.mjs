// ethers v6 with the node's unlocked dev accounts, as a Hardhat/Anvil script uses them:
// provider.getSigner(), sendTransaction without a local key, signMessage, signTypedData.
// Prints one JSON line of what it saw. Usage: node ethers_dev_accounts.mjs RPC_URL
import { JsonRpcProvider, verifyMessage, verifyTypedData } from "ethers";

const provider = new JsonRpcProvider(process.argv[2], undefined, { cacheTimeout: -1 });
const accounts = await provider.listAccounts();
const signer = await provider.getSigner(0);
const to = "0x00000000000000000000000000000000000000b0";
const tx = await signer.sendTransaction({ to, value: 7n });
const receipt = await tx.wait();
const message = "dev accounts over JSON-RPC";
const signature = await signer.signMessage(message);
const domain = { name: "Ether Mail", version: "1", chainId: 1,
  verifyingContract: "0xCcCCccccCCCCcCCCCCCcCcCccCcCCCcCcccccccC" };
const types = { Person: [{ name: "name", type: "string" }, { name: "wallet", type: "address" }] };
const value = { name: "Cow", wallet: "0xCD2a3d9F938E13CD947Ec05AbC7FE734Df8DD826" };
const typed = await signer.signTypedData(domain, types, value);
console.log(JSON.stringify({
  accounts: accounts.length,
  signer: signer.address,
  status: receipt.status,
  from: receipt.from,
  balance: (await provider.getBalance(to)).toString(),
  messageSigner: verifyMessage(message, signature),
  typedSigner: verifyTypedData(domain, types, value, typed),
}));
