// Verification of the ledger: rebuild every balance, lot and reservation (or one
// customer's) from the entries and compare with what is stored (AdminService.VerifyLedger,
// the same check as `npm run verify`). Read-only, but admin only: it reads the whole ledger.
import { AdminService } from "@burndown/sdk/gen/burndown/v1/admin_service_pb.js";
import { useMutation } from "@connectrpc/connect-query";
import { type FormEvent, useState } from "react";
import { ErrorNote, Section } from "../../ui.js";
import { AdminOnly } from "./forms.js";

/** VerifyPage runs a verification on demand and shows what it found. */
export function VerifyPage({ isAdmin }: { isAdmin: boolean }) {
  const [customerId, setCustomerId] = useState("");
  const verify = useMutation(AdminService.method.verifyLedger);
  const submit = (event: FormEvent) => {
    event.preventDefault();
    verify.mutate({ customerId: customerId.trim() });
  };
  const result = verify.data;
  return (
    <Section title="Verify the ledger">
      <p className="muted">
        Rebuilds every balance, lot and reservation from the append-only ledger entries and compares them with the stored ones. Any difference
        means a stored figure no longer matches its history.
      </p>
      {!isAdmin ? (
        <AdminOnly what="verify the ledger" />
      ) : (
        <form className="filters row" aria-label="Verify the ledger" onSubmit={submit}>
          <label>
            Customer id (optional)
            <input value={customerId} onChange={(event) => setCustomerId(event.target.value)} placeholder="every customer" />
          </label>
          <button type="submit" disabled={verify.isPending}>{verify.isPending ? "Verifying…" : "Verify now"}</button>
        </form>
      )}
      {verify.error && <ErrorNote error={verify.error} prefix="Could not verify" />}
      {result && (
        <div role="status" aria-label="Verification result">
          <p className={result.differenceCount === 0n ? "success" : "error"}>
            {result.differenceCount === 0n ? "No differences: every projection equals its entries." : `${result.differenceCount} differences found.`}
          </p>
          <p className="muted" data-testid="verify-counts">
            Checked {result.balancesChecked.toString()} balances, {result.lotsChecked.toString()} lots and {result.reservationsChecked.toString()} reservations
            against {result.entriesChecked.toString()} entries in {durationText(result.duration)}.
          </p>
          {result.differences.length > 0 && (
            <table aria-label="Differences">
              <thead>
                <tr>
                  <th scope="col">Table</th>
                  <th scope="col">Row</th>
                  <th scope="col">Column</th>
                  <th scope="col" className="num">Stored</th>
                  <th scope="col" className="num">Rebuilt from entries</th>
                </tr>
              </thead>
              <tbody>
                {result.differences.map((difference) => (
                  <tr key={`${difference.table}/${difference.row}/${difference.column}`}>
                    <td>{difference.table}</td>
                    <td><code>{difference.row}</code></td>
                    <td>{difference.column}</td>
                    <td className="num">{difference.stored}</td>
                    <td className="num">{difference.rebuilt}</td>
                  </tr>
                ))}
              </tbody>
            </table>
          )}
        </div>
      )}
    </Section>
  );
}

function durationText(duration: { seconds: bigint; nanos: number } | undefined): string {
  if (!duration) return "no time";
  const ms = Number(duration.seconds) * 1000 + Math.round(duration.nanos / 1e6);
  return ms < 1000 ? `${ms} ms` : `${(ms / 1000).toFixed(1)} s`;
}
